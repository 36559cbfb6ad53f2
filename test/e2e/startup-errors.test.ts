/**
 * What an operator sees when `wharf serve` cannot start: one line naming the problem and what to do,
 * no stack trace, and the exit status docs/operations.md promises (2: the configuration is invalid, 1:
 * something outside it stops the start). For each case `wharf config check` runs on the same
 * configuration: it refuses exactly what is invalid in the configuration itself (status 2, the same
 * message) and accepts the rest, which it does not check (it opens nothing). Also: one server per
 * SQLite database (the lock), released by a crash; PostgreSQL replicas sharing storage still start.
 * S3 storage is checked before the server listens: an unknown bucket, refused keys and an endpoint
 * that does not answer each stop the start (against the test run's RADOS Gateway).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPostgresDatabase, pgRows } from '../helpers/databases.js';
import { runCommand } from '../helpers/e2e-utils.js';
import { startFaultServer } from '../helpers/fault-server.js';
import { jsonLogProblems } from '../helpers/json-lines.js';
import { freePort } from '../helpers/ports.js';
import { testS3Options } from '../helpers/s3.js';
import { makeTestPki } from '../helpers/tls.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

interface Outcome {
  code: number;
  message?: RegExp;
}

interface Case {
  name: string;
  /** The environment (and config file) of both commands; runs once before them. */
  setup(dir: string): Promise<{ env: Record<string, string>; args?: string[]; user?: 'unprivileged' }>;
  serve: Outcome & { message: RegExp };
  check: Outcome;
  /** Text that must appear in no output (a password in db.url). */
  secret?: string;
}

/** `wharf <args>` to completion (SIGKILL after 60 s: a server that should have refused and did not). */
function wharf(args: string[], env: Record<string, string>, user?: 'unprivileged') {
  const base: NodeJS.ProcessEnv = { ...process.env, WHARF_HOST: '127.0.0.1', WHARF_LOG_LEVEL: 'warn', WHARF_AUTH_ADMIN_PASSWORD: 'startup-errors-admin' };
  for (const k of ['WHARF_DB_URL', 'WHARF_DATA_DIR', 'WHARF_PORT', 'WHARF_TLS_CERT', 'WHARF_TLS_KEY']) delete base[k];
  const node = [process.execPath, '--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), ...args];
  // root may write anywhere: an unwritable directory needs another user (non-root runs use chmod).
  const [bin, ...rest] = user === 'unprivileged' && process.getuid?.() === 0 ? ['runuser', '-u', 'nobody', '--', ...node] : node;
  return runCommand(bin!, rest, { env: { ...base, ...env }, timeoutMs: 60_000 });
}

describe('wharf serve and wharf config check: startup errors', () => {
  const dirs: string[] = [];
  const blockers: Server[] = [];
  const servers: WharfProcess[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    for (const b of blockers) b.close();
    for (const d of dirs) {
      chmodSync(d, 0o700);
      await rm(d, { recursive: true, force: true });
    }
  });

  const cases: Case[] = [
    {
      name: 'port in use',
      async setup(dir) {
        const blocker = createServer();
        blockers.push(blocker);
        await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
        return { env: { WHARF_DATA_DIR: dir, WHARF_PORT: String((blocker.address() as { port: number }).port) } };
      },
      serve: { code: 1, message: /^wharf: cannot listen on 127\.0\.0\.1:\d+: the port is already in use .*set port \(WHARF_PORT\)/ },
      check: { code: 0 },
    },
    {
      name: 'data directory is a file',
      async setup(dir) {
        writeFileSync(join(dir, 'a-file'), 'x');
        return { env: { WHARF_DATA_DIR: join(dir, 'a-file'), WHARF_PORT: String(await freePort()) } };
      },
      serve: { code: 1, message: /^wharf: data_dir \S+\/a-file is a file, not a directory; set data_dir \(WHARF_DATA_DIR\)/ },
      check: { code: 0 },
    },
    {
      name: 'data directory not writable',
      async setup(dir) {
        const readOnly = join(dir, 'read-only');
        mkdirSync(readOnly, { mode: 0o755 });
        if (process.getuid?.() !== 0) chmodSync(readOnly, 0o555);
        // The unprivileged user must reach the directory (and tsx its cache in the temp directory).
        chmodSync(dir, 0o755);
        return { env: { WHARF_DATA_DIR: readOnly, WHARF_PORT: String(await freePort()) }, user: 'unprivileged' };
      },
      serve: { code: 1, message: /^wharf: data_dir \S+\/read-only is not writable \(permission denied for uid \d+\): give that user write access/ },
      check: { code: 0 },
    },
    {
      name: 'invalid YAML',
      async setup(dir) {
        writeFileSync(join(dir, 'wharf.yaml'), 'port: 5000\nstorage: [\n  driver: filesystem\n');
        return { env: { WHARF_DATA_DIR: dir }, args: ['--config', join(dir, 'wharf.yaml')] };
      },
      serve: { code: 2, message: /^wharf: \S+\/wharf\.yaml is not valid YAML: .*line \d+, column \d+/ },
      check: { code: 2, message: /^wharf: \S+\/wharf\.yaml is not valid YAML: .*line \d+, column \d+/ },
    },
    {
      name: 'db.url of a database Wharf does not support (mysql://)',
      async setup(dir) {
        return { env: { WHARF_DATA_DIR: dir, WHARF_DB_URL: 'mysql://wharf:db-secret-1@db.example.com/wharf', WHARF_PORT: String(await freePort()) } };
      },
      serve: { code: 2, message: /^wharf: invalid configuration: db\.url \(set by WHARF_DB_URL\): must be sqlite:<path> or postgres:\/\// },
      check: { code: 2, message: /^wharf: invalid configuration: db\.url \(set by WHARF_DB_URL\): must be sqlite:<path> or postgres:\/\// },
      secret: 'db-secret-1',
    },
    {
      name: 'PostgreSQL cannot be reached',
      async setup(dir) {
        const closed = await freePort();
        return { env: { WHARF_DATA_DIR: dir, WHARF_DB_URL: `postgres://wharf:db-secret-2@127.0.0.1:${closed}/wharf`, WHARF_PORT: String(await freePort()) } };
      },
      serve: { code: 1, message: /^wharf: cannot connect to PostgreSQL at postgres:\/\/127\.0\.0\.1:\d+\/wharf: .*ECONNREFUSED.*; check db\.url \(WHARF_DB_URL\)/ },
      check: { code: 0 },
      secret: 'db-secret-2',
    },
    {
      name: 'TLS files missing',
      async setup(dir) {
        return { env: { WHARF_DATA_DIR: dir, WHARF_TLS_CERT: join(dir, 'missing.crt'), WHARF_TLS_KEY: join(dir, 'missing.key'), WHARF_PORT: String(await freePort()) } };
      },
      serve: { code: 1, message: /^wharf: cannot read tls\.cert \S+\/missing\.crt: no such file; fix the path \(WHARF_TLS_CERT\)/ },
      check: { code: 0 },
    },
    {
      name: 'a second server on the same SQLite database',
      async setup(dir) {
        servers.push(await startWharf({ dataDir: dir, organizations: [] }));
        return { env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()) } };
      },
      serve: { code: 1, message: /^wharf: another wharf serve is already running on the SQLite database \S+\/wharf\.db \(pid \d+ .*\): stop it first/ },
      check: { code: 0 },
    },
    ...s3Cases(),
    ...locationCases(),
  ];

  for (const c of cases) {
    it(`${c.name}: serve exits ${c.serve.code} with a clear message and no stack trace; config check exits ${c.check.code}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'wharf-startup-'));
      dirs.push(dir);
      const { env, args = [], user } = await c.setup(dir);

      const served = await wharf(['serve', ...args], env, user);
      const all = `${served.stdout}${served.stderr}`;
      assert.equal(served.signal, null, `wharf serve must refuse to start, not run; output:\n${all}`);
      assert.equal(served.code, c.serve.code, all);
      assert.match(served.stderr, c.serve.message);
      assert.doesNotMatch(served.stderr, /^\s+at /m, 'no stack trace');
      assert.doesNotMatch(served.stderr, /\.ts:\d+|Error:/, 'no error class or source position');
      assert.equal(served.stderr.trimEnd().split('\n').length, 1, `one line:\n${served.stderr}`);
      assert.deepEqual(jsonLogProblems(served.stdout), [], 'stdout holds only JSON log lines');
      if (c.secret) assert.ok(!all.includes(c.secret), 'the database password is not shown');

      const checked = await wharf(['config', 'check', ...args], env, user);
      assert.equal(checked.code, c.check.code, `${checked.stdout}${checked.stderr}`);
      if (c.check.message) {
        assert.match(checked.stderr, c.check.message);
        assert.equal(checked.stderr, served.stderr, 'config check and serve say the same');
      } else {
        assert.equal(checked.stderr, '');
        assert.equal(typeof JSON.parse(checked.stdout), 'object', 'the effective configuration is printed');
      }
      if (c.secret) assert.ok(!`${checked.stdout}${checked.stderr}`.includes(c.secret), 'the database password is not shown');
    });
  }
});

describe('one server per SQLite database', () => {
  it('a server killed with SIGKILL leaves no lock behind: the next start on the data directory runs', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-lock-'));
    try {
      const first = await startWharf({ dataDir, organizations: [] });
      await first.kill();
      const second = await startWharf({ dataDir, organizations: [] });
      try {
        const res = await fetch(`${second.url}/v2/`);
        await res.arrayBuffer();
        assert.equal(res.status, 401);
      } finally {
        await second.stop({ keepData: true });
      }
      // A clean stop releases it too.
      const third = await startWharf({ dataDir, organizations: [] });
      await third.stop({ keepData: true });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  describe('PostgreSQL', () => {
    let adminClient: pg.Client;
    let dbUrl: string;
    const name = `wharf_replicas_${randomBytes(6).toString('hex')}`;
    before(async () => {
      const admin = process.env.WHARF_TEST_PG_URL;
      assert.ok(admin, 'WHARF_TEST_PG_URL must name the test PostgreSQL server');
      adminClient = new pg.Client({ connectionString: admin });
      await adminClient.connect();
      await adminClient.query(`create database ${name}`);
      const u = new URL(admin);
      u.pathname = `/${name}`;
      dbUrl = u.toString();
    });
    after(async () => {
      await adminClient.query(`drop database if exists ${name} with (force)`);
      await adminClient.end();
    });

    it('two servers on one database and one data directory both run (replicas)', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'wharf-replicas-'));
      try {
        const a = await startWharf({ dataDir, organizations: [], env: { WHARF_DB_URL: dbUrl } });
        try {
          const b = await startWharf({ dataDir, organizations: [], env: { WHARF_DB_URL: dbUrl } });
          try {
            for (const w of [a, b]) {
              const res = await fetch(`${w.url}/v2/`);
              await res.arrayBuffer();
              assert.equal(res.status, 401, `${w.url} answers`);
            }
          } finally {
            await b.stop({ keepData: true });
          }
        } finally {
          await a.stop({ keepData: true });
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
});

describe('storage locations on one PostgreSQL: every process must use the same storage per location name', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let work: string;
  const servers: WharfProcess[] = [];
  before(async () => {
    database = await createPostgresDatabase();
    work = await mkdtemp(join(tmpdir(), 'wharf-locations-'));
  });
  after(async () => {
    for (const s of servers) await s.stop({ keepData: true });
    await database.drop();
    await rm(work, { recursive: true, force: true });
  });

  /** Process `who`'s environment: its own data directory, `fs` at `fsDir`, `shared` the same directory for all. */
  const envOf = (who: string, fsDir: string): Record<string, string> => {
    const dataDir = join(work, who);
    mkdirSync(dataDir, { recursive: true });
    const locations = { fs: { driver: 'filesystem', path: fsDir }, shared: { driver: 'filesystem', path: join(work, 'shared') } };
    return { WHARF_DATA_DIR: dataDir, WHARF_DB_URL: database.url, WHARF_STORAGE_LOCATIONS: JSON.stringify(locations) };
  };
  const cli = async (args: string[], env: Record<string, string>) => wharf(args, { ...env, WHARF_PORT: String(await freePort()) });
  const markerOf = (dir: string) => JSON.parse(readFileSync(join(dir, '_wharf', 'location.json'), 'utf8')) as { id: string; location: string };
  const recorded = async (name: string) => (await pgRows(database.url, `select marker_id from storage_locations where name = '${name}'`))[0]?.marker_id;

  it('a second process whose fs is another directory refuses with one line; on the same directory both run; storage adopt is the way out', async () => {
    const fsA = join(work, 'fs-a');
    const fsB = join(work, 'fs-b');
    const a = await startWharf({ dataDir: join(work, 'a'), organizations: [], env: envOf('a', fsA) });
    servers.push(a);
    // The first process wrote each location's marker and recorded its id.
    const markerA = markerOf(fsA);
    assert.equal(markerA.location, 'fs');
    assert.equal(await recorded('fs'), markerA.id);
    assert.equal(await recorded('shared'), markerOf(join(work, 'shared')).id);

    const refused = await cli(['serve'], envOf('b', fsB));
    assert.equal(refused.signal, null, `wharf serve must refuse to start:\n${refused.stdout}${refused.stderr}`);
    assert.equal(refused.code, 1, `${refused.stdout}${refused.stderr}`);
    assert.equal(refused.stderr.trimEnd().split('\n').length, 1, `one line:\n${refused.stderr}`);
    assert.equal(
      refused.stderr,
      `wharf: storage location "fs" is not the storage the database knows: the database expects marker ${markerA.id}, the storage holds no marker (_wharf/location.json) (directory ${fsB}); every process on this database must use the same storage as location "fs" (storage.locations.fs.path); if it really moved, run wharf storage adopt fs\n`,
    );
    assert.equal(existsSync(join(fsB, '_wharf')), false, 'nothing written into the refused directory');
    assert.equal(await recorded('fs'), markerA.id);
    // The CLI commands that open storage refuse it the same way.
    const gc = await cli(['gc', '--dry-run'], envOf('b', fsB));
    assert.equal(gc.code, 1, `${gc.stdout}${gc.stderr}`);
    assert.match(gc.stderr, /^wharf: storage location "fs" is not the storage the database knows: .*run wharf storage adopt fs\n$/);

    const b = await startWharf({ dataDir: join(work, 'b'), organizations: [], env: envOf('b', fsA) });
    servers.push(b);
    for (const w of [a, b]) {
      const res = await fetch(`${w.url}/v2/`);
      await res.arrayBuffer();
      assert.equal(res.status, 401, `${w.url} answers`);
    }
    await b.stop({ keepData: true });

    // The operator moved fs to fs-b on purpose: adopt it with that configuration, then it starts and a's does not.
    const adopted = await cli(['storage', 'adopt', 'fs'], envOf('b', fsB));
    assert.equal(adopted.code, 0, `${adopted.stdout}${adopted.stderr}`);
    const markerB = markerOf(fsB);
    assert.notEqual(markerB.id, markerA.id);
    assert.equal(await recorded('fs'), markerB.id);
    assert.match(adopted.stderr, new RegExp(`^storage location "fs" \\(directory ${fsB}\\) adopted: the database records its marker ${markerB.id} \\(written now: the storage held none\\); it recorded ${markerA.id} before\n$`));
    const moved = await startWharf({ dataDir: join(work, 'b'), organizations: [], env: envOf('b', fsB) });
    servers.push(moved);
    const old = await cli(['gc', '--dry-run'], envOf('a', fsA));
    assert.equal(old.code, 1, `${old.stdout}${old.stderr}`);
    assert.match(old.stderr, new RegExp(`expects marker ${markerB.id}, the storage holds marker ${markerA.id} `));
  });
});

/** An https server whose certificate a throwaway authority signed (trusted by nobody), for the TLS cases. */
let tlsServer: Promise<{ url: string; close(): Promise<void> }> | undefined;
function tlsStore(): Promise<{ url: string }> {
  tlsServer ??= (async () => {
    const pki = await makeTestPki();
    const server = await startFaultServer((_req, res) => void res.writeHead(200).end(), { tls: { key: pki.key, cert: pki.cert } });
    return { url: server.url, close: async () => (await server.close(), await pki.remove()) };
  })();
  return tlsServer;
}
after(async () => (await tlsServer)?.close());

/** The S3 cases: the test server's settings with one thing wrong in each. */
function s3Cases(): Case[] {
  const s3Env = async (dir: string, wrong: Record<string, string>) => {
    const o = testS3Options();
    return {
      env: {
        WHARF_DATA_DIR: dir,
        WHARF_PORT: String(await freePort()),
        WHARF_STORAGE_DRIVER: 's3',
        WHARF_STORAGE_S3_ENDPOINT: o.endpoint!,
        WHARF_STORAGE_S3_BUCKET: o.bucket,
        WHARF_STORAGE_S3_REGION: o.region,
        WHARF_STORAGE_S3_ACCESS_KEY_ID: o.accessKeyId!,
        WHARF_STORAGE_S3_SECRET_ACCESS_KEY: o.secretAccessKey!,
        ...wrong,
      },
    };
  };
  return [
    {
      name: 'S3 bucket does not exist',
      setup: (dir) => s3Env(dir, { WHARF_STORAGE_S3_BUCKET: 'no-such-bucket' }),
      serve: { code: 1, message: /^wharf: S3 storage: no bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+; create it or fix storage\.s3\.bucket \(WHARF_STORAGE_S3_BUCKET\)/ },
      check: { code: 0 },
    },
    {
      name: 'S3 refuses the keys',
      setup: (dir) => s3Env(dir, { WHARF_STORAGE_S3_SECRET_ACCESS_KEY: 's3-secret-wrong-1' }),
      serve: { code: 1, message: /^wharf: S3 storage: bucket "\S+" at http:\/\/127\.0\.0\.1:\d+ refused the credentials \(HTTP 403\); check storage\.s3\.access_key_id and storage\.s3\.secret_access_key/ },
      check: { code: 0 },
      secret: 's3-secret-wrong-1',
    },
    {
      name: 'S3 endpoint cannot be reached',
      setup: async (dir) => s3Env(dir, { WHARF_STORAGE_S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` }),
      serve: { code: 1, message: /^wharf: S3 storage: cannot reach bucket "\S+" at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED; check storage\.s3\.endpoint \(WHARF_STORAGE_S3_ENDPOINT\)/ },
      check: { code: 0 },
    },
    {
      name: "S3 endpoint's certificate does not verify",
      setup: async (dir) => s3Env(dir, { WHARF_STORAGE_S3_ENDPOINT: (await tlsStore()).url }),
      serve: { code: 1, message: /^wharf: S3 storage: the certificate of bucket "\S+" at https:\/\/127\.0\.0\.1:\d+ does not verify \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); give its certificate authority in storage\.s3\.ca_file \(WHARF_STORAGE_S3_CA_FILE\) or NODE_EXTRA_CA_CERTS\n$/ },
      check: { code: 0 },
    },
    {
      name: 'storage.s3.ca_file cannot be read',
      setup: async (dir) => s3Env(dir, { WHARF_STORAGE_S3_ENDPOINT: (await tlsStore()).url, WHARF_STORAGE_S3_CA_FILE: join(dir, 'missing-ca.pem') }),
      serve: { code: 1, message: /^wharf: storage\.s3\.ca_file: cannot read \S+\/missing-ca\.pem \(ENOENT\)\n$/ },
      check: { code: 0 },
    },
    {
      name: 'storage.driver s3 without a bucket',
      setup: async (dir) => ({ env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()), WHARF_STORAGE_DRIVER: 's3' } }),
      serve: { code: 2, message: /^wharf: invalid configuration: storage.*needs storage\.s3\.bucket/ },
      check: { code: 2, message: /^wharf: invalid configuration: storage.*needs storage\.s3\.bucket/ },
    },
  ];
}

/** Storage locations (`storage.locations`, `storage.preference`, WHARF_STORAGE_PREFERENCE). */
function locationCases(): Case[] {
  const two = JSON.stringify({ near: { driver: 'filesystem' }, far: { driver: 'memory' } });
  return [
    {
      name: 'storage.preference names a location that does not exist (configuration file)',
      async setup(dir) {
        writeFileSync(join(dir, 'wharf.yaml'), 'storage:\n  locations:\n    near: { driver: filesystem }\n    far: { driver: memory }\n  preference: [near, elsewhere]\n');
        return { env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()) }, args: ['--config', join(dir, 'wharf.yaml')] };
      },
      serve: { code: 2, message: /^wharf: invalid configuration in \S+\/wharf\.yaml: storage\.preference: no storage location named "elsewhere"; the locations are near, far\n$/ },
      check: { code: 2, message: /^wharf: invalid configuration in \S+\/wharf\.yaml: storage\.preference: no storage location named "elsewhere"/ },
    },
    {
      name: 'WHARF_STORAGE_PREFERENCE names a location that does not exist',
      setup: async (dir) => ({ env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()), WHARF_STORAGE_LOCATIONS: two, WHARF_STORAGE_PREFERENCE: 'far elsewhere' } }),
      serve: { code: 2, message: /^wharf: invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): no storage location named "elsewhere"; the locations are near, far\n$/ },
      check: { code: 2, message: /^wharf: invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): no storage location named "elsewhere"/ },
    },
    {
      name: 'WHARF_STORAGE_PREFERENCE names a location twice',
      setup: async (dir) => ({ env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()), WHARF_STORAGE_LOCATIONS: two, WHARF_STORAGE_PREFERENCE: 'far,near,far' } }),
      serve: { code: 2, message: /^wharf: invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): names "far" more than once\n$/ },
      check: { code: 2, message: /^wharf: invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): names "far" more than once\n$/ },
    },
    {
      name: 'an s3 location without a bucket',
      async setup(dir) {
        writeFileSync(join(dir, 'wharf.yaml'), 'storage:\n  locations:\n    near: { driver: filesystem }\n    far: { driver: s3, s3: { endpoint: "http://127.0.0.1:1" } }\n');
        return { env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()) }, args: ['--config', join(dir, 'wharf.yaml')] };
      },
      serve: { code: 2, message: /^wharf: invalid configuration in \S+\/wharf\.yaml: storage\.locations\.far: an s3 location needs s3\.bucket\n$/ },
      check: { code: 2, message: /^wharf: invalid configuration in \S+\/wharf\.yaml: storage\.locations\.far: an s3 location needs s3\.bucket\n$/ },
    },
    {
      name: 'every storage location down at start',
      async setup(dir) {
        // A file where both locations' directories would go: neither can be created.
        writeFileSync(join(dir, 'a-file'), 'x');
        const locations = { near: { driver: 'filesystem', path: join(dir, 'a-file', 'near') }, far: { driver: 'filesystem', path: join(dir, 'a-file', 'far') } };
        return { env: { WHARF_DATA_DIR: dir, WHARF_PORT: String(await freePort()), WHARF_STORAGE_LOCATIONS: JSON.stringify(locations) } };
      },
      serve: { code: 1, message: /^wharf: storage location "near": directory \S+\/a-file\/near: ENOTDIR; fix storage\.locations\.near\.path or its permissions\n$/ },
      check: { code: 0 },
    },
  ];
}
