import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, configLeaves, loadConfig } from './load.js';
import { storageLocations } from './storage-locations.js';
import { parseDuration, parseSize } from './units.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.port, 5000);
    assert.equal(c.registry.max_manifest_size, 4 * 1024 * 1024);
    assert.equal(c.registry.upload_timeout, 24 * 3600 * 1000);
    assert.ok(c.data_dir.startsWith('/'));
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.registry));
  });

  it('reads YAML and lets WHARF_* variables override it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-cfg-'));
    try {
      const file = join(dir, 'wharf.yaml');
      await writeFile(file, 'port: 6000\ndata_dir: /srv/wharf\nregistry:\n  max_manifest_size: 1 MiB\nstorage:\n  fsync: false\n');
      const c = loadConfig({ file, env: { WHARF_PORT: '7000', WHARF_DB_URL: 'postgres://u:p@h/db', WHARF_REGISTRY_UPLOAD_TIMEOUT: '2h' } });
      assert.equal(c.port, 7000);
      assert.equal(c.data_dir, '/srv/wharf');
      assert.equal(c.registry.max_manifest_size, 1024 * 1024);
      assert.equal(c.registry.upload_timeout, 2 * 3600 * 1000);
      assert.equal(c.storage.fsync, false);
      assert.equal(c.db.url, 'postgres://u:p@h/db');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('invalid YAML is one line naming the file, line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-cfg-'));
    try {
      const file = join(dir, 'wharf.yaml');
      await writeFile(file, 'port: 5000\nstorage: [\n  driver: filesystem\n');
      assert.throws(
        () => loadConfig({ file, env: {} }),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${file} is not valid YAML: `) && /line \d+, column \d+$/.test(err.message) && !err.message.includes('\n'),
      );
      await writeFile(file, 'port: 5000\nport: 6000\n');
      assert.throws(() => loadConfig({ file, env: {} }), (err: unknown) => err instanceof ConfigError && /is not valid YAML: .*unique/i.test(err.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('db.url must name a supported database and be a valid URL; the value is not repeated', () => {
    for (const url of ['mysql://wharf:secret-pw@db/wharf', 'postgres:/db', 'sqlite:', '']) {
      assert.throws(
        () => loadConfig({ env: { WHARF_DB_URL: url } }),
        (err: unknown) => err instanceof ConfigError && /db\.url \(set by WHARF_DB_URL\): must be sqlite:<path> or postgres:\/\//.test(err.message) && !err.message.includes('secret-pw'),
        url,
      );
    }
    assert.throws(() => loadConfig({ env: { WHARF_DB_URL: 'postgres://u:p@@h:x/db' } }), (err: unknown) => err instanceof ConfigError && /db\.url .*is not a valid URL/.test(err.message));
    for (const url of ['sqlite:/srv/wharf.db', 'sqlite::memory:', 'postgres://u:p@h:5432/db', 'postgresql://h/db']) assert.equal(loadConfig({ env: { WHARF_DB_URL: url } }).db.url, url);
  });

  it('lists every problem, naming the key', () => {
    assert.throws(
      () => loadConfig({ env: { WHARF_LOG_LEVEL: 'loud', WHARF_REGISTRY_MAX_MANIFEST_SIZE: 'huge' } }),
      (err: unknown) => err instanceof ConfigError && /log_level/.test(err.message) && /registry\.max_manifest_size/.test(err.message),
    );
    assert.throws(() => loadConfig({ env: { WHARF_PORT: 'abc' } }), /WHARF_PORT/);
    assert.throws(() => loadConfig({ env: { WHARF_STORAGE_FSYNC: 'maybe' } }), /WHARF_STORAGE_FSYNC/);
    assert.throws(() => loadConfig({ overrides: { nonsense: 1 } }), /nonsense|Unrecognized/);
    assert.throws(() => loadConfig({ env: { WHARF_TLS_CERT: '/x.crt' } }), /tls\.cert and tls\.key/);
    assert.throws(() => loadConfig({ file: '/nonexistent/wharf.yaml', env: {} }), /cannot read config file/);
  });

  it('reads auth defaults and WHARF_ADMIN_PASSWORD as an alias of WHARF_AUTH_ADMIN_PASSWORD', () => {
    const defaults = loadConfig({ env: {} }).auth;
    assert.deepEqual(defaults, {
      enabled: true,
      token_ttl: 300_000,
      admin_username: 'admin',
      default_visibility: 'private',
      login_failures_per_minute: 10,
      user_initialize: false,
      session_idle_timeout: 12 * 3_600_000,
      session_max_age: 7 * 86_400_000,
    });
    assert.equal(loadConfig({ env: { WHARF_ADMIN_PASSWORD: 'alias-password' } }).auth.admin_password, 'alias-password');
    assert.equal(loadConfig({ env: { WHARF_ADMIN_PASSWORD: 'alias-password', WHARF_AUTH_ADMIN_PASSWORD: 'main-password' } }).auth.admin_password, 'main-password');
    assert.throws(() => loadConfig({ env: { WHARF_ADMIN_PASSWORD: 'short' } }), /auth\.admin_password/);
  });

  it('maps every leaf to an environment variable', () => {
    const envs = configLeaves().map((l) => l.env);
    for (const e of ['WHARF_PORT', 'WHARF_DATA_DIR', 'WHARF_DB_URL', 'WHARF_STORAGE_PATH', 'WHARF_REGISTRY_MAX_MANIFEST_SIZE']) assert.ok(envs.includes(e), e);
  });
});

describe('storage locations', () => {
  const names = (env: Record<string, string>, file?: string) => storageLocations(loadConfig({ env, file })).map((l) => l.name);

  it('without storage.locations: one location named default, as storage.driver and storage.path say', () => {
    const c = loadConfig({ env: { WHARF_DATA_DIR: '/srv/wharf' } });
    assert.deepEqual(storageLocations(c), [{ name: 'default', driver: 'filesystem', path: '/srv/wharf/blobs', fsync: true, directIo: true, s3: c.storage.s3 }]);
    assert.deepEqual(names({ WHARF_STORAGE_PREFERENCE: 'default' }), ['default']);
  });

  it('orders the locations by preference, the others after in configuration order; WHARF_STORAGE_PREFERENCE overrides it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-cfg-'));
    try {
      const file = join(dir, 'wharf.yaml');
      await writeFile(
        file,
        [
          'data_dir: /srv/wharf',
          'storage:',
          '  locations:',
          '    local: { driver: filesystem }',
          '    scratch: { driver: memory }',
          '    eu: { driver: s3, s3: { bucket: wharf-eu, endpoint: "http://rgw-eu:7480" } }',
          '    us: { driver: filesystem, path: relative/us, fsync: false }',
          '  preference: [eu]',
          '',
        ].join('\n'),
      );
      assert.deepEqual(names({}, file), ['eu', 'local', 'scratch', 'us']);
      assert.deepEqual(names({ WHARF_STORAGE_PREFERENCE: 'us, scratch' }, file), ['us', 'scratch', 'local', 'eu']);
      assert.deepEqual(names({ WHARF_STORAGE_PREFERENCE: ' us\tlocal  eu ' }, file), ['us', 'local', 'eu', 'scratch']);
      const [eu, local, scratch, us] = storageLocations(loadConfig({ env: {}, file }));
      assert.equal(eu!.s3!.bucket, 'wharf-eu');
      assert.equal(eu!.s3!.connect_timeout, 5000);
      assert.equal(local!.path, '/srv/wharf/locations/local');
      assert.equal(scratch!.path, undefined);
      assert.deepEqual([us!.path, us!.fsync], [join(process.cwd(), 'relative/us'), false]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown or repeated name in the preference, a bad location name and an incomplete location, in one line', () => {
    const locations = JSON.stringify({ fs: { driver: 'filesystem' }, s3: { driver: 's3', s3: { bucket: 'wharf-blobs' } } });
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ WHARF_STORAGE_PREFERENCE: 'eu' }, /^invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): no storage location named "eu"; the locations are default$/],
      [{ WHARF_STORAGE_LOCATIONS: locations, WHARF_STORAGE_PREFERENCE: 's3,eu' }, /^invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): no storage location named "eu"; the locations are fs, s3$/],
      [{ WHARF_STORAGE_LOCATIONS: locations, WHARF_STORAGE_PREFERENCE: 'fs s3 fs' }, /^invalid configuration: storage\.preference \(set by WHARF_STORAGE_PREFERENCE\): names "fs" more than once$/],
      [{ WHARF_STORAGE_LOCATIONS: '{"EU":{"driver":"memory"}}' }, /^invalid configuration: storage\.locations\.EU: "EU" is not a location name/],
      [{ WHARF_STORAGE_LOCATIONS: '{"eu":{"driver":"s3"}}' }, /^invalid configuration: storage\.locations\.eu: an s3 location needs s3\.bucket$/],
      [{ WHARF_STORAGE_LOCATIONS: '{"eu":{"driver":"filesystem","s3":{"bucket":"abc"}}}' }, /^invalid configuration: storage\.locations\.eu: s3 settings belong to a location whose driver is s3$/],
      [{ WHARF_STORAGE_LOCATIONS: '{"eu":{"driver":"floppy"}}' }, /^invalid configuration: storage\.locations\.eu\.driver: /],
      [{ WHARF_STORAGE_LOCATIONS: '{"eu":' }, /^invalid configuration: storage\.locations \(set by WHARF_STORAGE_LOCATIONS\): give a JSON object of locations/],
    ];
    for (const [env, message] of cases) {
      assert.throws(() => loadConfig({ env }), (err: unknown) => err instanceof ConfigError && message.test(err.message) && !err.message.includes('\n'), JSON.stringify(env));
    }
  });

  it('reads the S3 durations given as defaults in their units (5 s, 60 s, 5 min), not as seconds', () => {
    const s3 = loadConfig({ env: {} }).storage.s3;
    assert.deepEqual([s3.connect_timeout, s3.request_timeout, s3.redirect_expiry], [5000, 60_000, 300_000]);
  });
});

describe('units', () => {
  it('parses sizes', () => {
    assert.equal(parseSize('10 GiB'), 10 * 1024 ** 3);
    assert.equal(parseSize('512MB'), 512e6);
    assert.equal(parseSize('1.5 KiB'), 1536);
    assert.equal(parseSize(42), 42);
    for (const bad of ['', '10 XB', '-1', 'GiB', '1e3']) assert.equal(parseSize(bad), undefined, bad);
  });
  it('parses durations', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('2w'), 14 * 86_400_000);
    assert.equal(parseDuration(90), 90_000);
    assert.equal(parseDuration('90'), 90_000);
    for (const bad of ['', '10x', 'h', '1h 30m', '-5s']) assert.equal(parseDuration(bad), undefined, bad);
  });
});
