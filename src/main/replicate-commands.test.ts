/**
 * `wharf replicate` on both dialects, over two filesystem locations: an organization's targets (set,
 * shown, cleared, unknown locations and organizations refused), the status of a nested repository as
 * text and JSON, a backfill that queues what a location lacks once (a progress line on a terminal only),
 * usage errors, and the answer when fewer than two locations are configured.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { fsLocations, LocatedTestStorage } from '../../test/helpers/storage-locations.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { BlobPlacementStore } from '../db/blob-placement-store.js';
import { BlobStore } from '../db/blob-store.js';
import type { DatabaseHandle } from '../db/connect.js';
import { ReplicationJobStore } from '../db/replication-job-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import { MemoryBlobDriver } from '../storage/memory/memory-blob-driver.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { UsageError } from './account-commands.js';
import { createAccountServices } from './compose.js';
import { runReplicateCommand } from './replicate-commands.js';

for (const dialect of DIALECTS) {
  describe(`wharf replicate (${dialect})`, () => {
    let h: DatabaseHandle & { url: string };
    let config: Readonly<Config>;
    let dataDir: string;
    let fs: Awaited<ReturnType<typeof fsLocations>>;
    before(async () => {
      h = await openTestDatabase(dialect);
      dataDir = await mkdtemp(join(tmpdir(), 'wharf-replicate-'));
      fs = await fsLocations(['eu', 'us']);
      config = loadConfig({ env: {}, overrides: { log_level: 'silent', data_dir: dataDir, db: { url: h.url } } });
      const { accounts } = createAccountServices(h, config);
      await accounts.createUser({ name: 'owner', password: 'owner-password-1' });
      await accounts.createOrganization({ name: 'acme', creator: 'owner' });
    });
    after(async () => {
      await h?.close();
      await fs?.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    });

    /** Runs a command over a fresh view of the two locations; its output and exit code. */
    const run = async (words: string, args: string[] = [], opts: Record<string, unknown> = {}, o: { tty?: boolean; storage?: BlobDriver } = {}) => {
      let stdout = '';
      let stderr = '';
      const io = {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s), isTTY: o.tty === true },
        storage: o.storage ?? new LocatedTestStorage(fs.locations.preferred),
      };
      const code = await runReplicateCommand(`replicate ${words}`, args, opts, config, io);
      return { code, stdout, stderr };
    };

    it("shows, replaces and clears an organization's targets; refuses unknown locations and organizations", async () => {
      let r = await run('targets', ['acme']);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, 'organization:     acme\nown targets:      none\nregistry targets: eu, us\n');
      r = await run('targets', ['acme', 'us']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /own targets: {6}us\n/);
      r = await run('targets', ['acme', 'us', 'mars']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /not a configured storage location: "mars" \(locations: eu, us\)/);
      assert.match((await run('targets', ['acme'])).stdout, /own targets: {6}us\n/, 'unchanged');
      r = await run('targets', ['acme'], { clear: true });
      assert.equal(r.code, 0);
      assert.match(r.stdout, /own targets: {6}none\n/);
      r = await run('targets', ['nosuchorg', 'eu']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /organization nosuchorg not found/);
    });

    it('prints the status of a nested repository as text and JSON', async () => {
      const repo = await new RepositoryStore(h.db, h.dialect).ensure('acme', 'team/app');
      const bytes = randomBytes(2048);
      const digest = await fs.locations.commit('eu', bytes);
      await new BlobStore(h.db).link(repo.id, digest, bytes.length);
      await new BlobPlacementStore(h.db).add(digest, 'eu', Date.now());
      await new ReplicationJobStore(h.db, h.dialect).enqueue(digest, ['us'], Date.now());
      const text = await run('status', ['acme/team/app']);
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.split('\n');
      assert.equal(lines[0], 'acme/team/app: 1 blobs, 2.0 KiB');
      assert.match(lines[2]!, /^eu\s+1 \(100%\)\s+2\.0 KiB\s+0\s+0$/);
      assert.match(lines[3]!, /^us\s+0 \(0%\)\s+0\.0 Byte\s+1\s+0$/);
      const json = await run('status', ['acme/team/app'], { json: true });
      assert.deepEqual(JSON.parse(json.stdout), {
        scope: 'acme/team/app',
        blobs: 1,
        bytes: 2048,
        locations: [
          { location: 'eu', blobs: 1, bytes: 2048, backlog: 0, failing: 0, last_error: null },
          { location: 'us', blobs: 0, bytes: 0, backlog: 1, failing: 0, last_error: null },
        ],
      });
      assert.equal((await run('status', ['acme/nosuch'])).code, 1);
    });

    it('counts exactly the named repository of 3 to 5 components, never a sibling or a repository under it', async () => {
      const repos = new RepositoryStore(h.db, h.dialect);
      const counts: Record<string, number> = { 'a/b': 1, 'a/b/c': 2, 'a/b/c/d': 3, 'a/bc': 4, 'a/b/cd': 5 };
      for (const [name, n] of Object.entries(counts)) {
        const repo = await repos.ensure('nest', name);
        for (let i = 0; i < n; i++) {
          const bytes = randomBytes(100);
          await new BlobStore(h.db).link(repo.id, await fs.locations.commit('eu', bytes), bytes.length);
        }
      }
      for (const [name, n] of Object.entries(counts)) {
        const r = await run('status', [`nest/${name}`], { json: true });
        assert.equal(r.code, 0, r.stderr);
        const status = JSON.parse(r.stdout);
        assert.equal(status.scope, `nest/${name}`);
        assert.deepEqual([status.blobs, status.bytes], [n, n * 100], `nest/${name}`);
      }
      assert.equal(JSON.parse((await run('status', ['nest'], { json: true })).stdout).blobs, 15);
      for (const missing of ['nest/a', 'nest/a/b/c/d/e', 'nest/a/b/', 'nest/a//b']) {
        const r = await run('status', [missing]);
        assert.equal(r.code, 1, missing);
        assert.match(r.stderr, /not found/);
      }
    });

    it('backfills what a location lacks once, with a progress line only on a terminal', async () => {
      await h.db.deleteFrom('replication_jobs').execute();
      const repo = await new RepositoryStore(h.db, h.dialect).ensure('acme', 'fill');
      for (let i = 0; i < 3; i++) {
        const bytes = randomBytes(100);
        await new BlobStore(h.db).link(repo.id, await fs.locations.commit('eu', bytes), bytes.length);
      }
      const blobs = Number((await h.db.selectFrom('blobs').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      let r = await run('backfill', [], { location: 'us' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, `queued ${blobs} copies to us; the replication workers copy them in the background (wharf replicate status)\n`);
      r = await run('backfill', [], { location: 'us' }, { tty: true });
      assert.match(r.stderr, /^\r\x1b\[Kus: \d+ blobs looked at, 0 copies queued\n/);
      assert.match(r.stderr, /queued 0 copies to us/);
      r = await run('backfill');
      assert.equal(r.code, 0);
      // us has its jobs already; in eu only the blob of the status test has a placement: the other jobs find theirs in place.
      assert.match(r.stderr, new RegExp(`queued ${blobs - 1} copies;`));
      assert.equal((await run('backfill', [], { location: 'mars' })).code, 2);
    });

    it('refuses bad usage, and says so when there is nothing to replicate between', async () => {
      await assert.rejects(run('status', ['a', 'b']), UsageError);
      await assert.rejects(run('backfill', ['x']), UsageError);
      await assert.rejects(run('targets', []), UsageError);
      await assert.rejects(run('targets', ['acme', 'eu'], { clear: true }), UsageError);
      await assert.rejects(run('status', [], { location: 'eu' }), /does not take --location/);
      const off = await run('status', [], {}, { storage: new MemoryBlobDriver() });
      assert.equal(off.code, 1);
      assert.equal(off.stderr, 'wharf: replication is off: fewer than two storage locations are configured (storage.locations)\n');
    });
  });
}
