import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireInstanceLock } from './instance-lock.js';
import { StartupError } from './startup-error.js';

describe('acquireInstanceLock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-lock-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('one holder per SQLite data directory; the second is refused with the holder named, until the first releases', () => {
    const config = { data_dir: dir, db: { pool_size: 1, prepared_statements: true } };
    const first = acquireInstanceLock(config)!;
    assert.deepEqual(first.paths, [join(dir, 'wharf.lock')]);
    assert.throws(
      () => acquireInstanceLock(config),
      (err: unknown) => err instanceof StartupError && err.message.includes(`pid ${process.pid}`) && err.message.includes(join(dir, 'wharf.db')) && /PostgreSQL/.test(err.message),
    );
    first.release();
    const again = acquireInstanceLock(config)!;
    again.release();
  });

  it('a database file outside the data directory is locked too', async () => {
    const other = await mkdtemp(join(tmpdir(), 'wharf-lock-other-'));
    try {
      const db = { url: `sqlite:${join(dir, 'shared.db')}`, pool_size: 1, prepared_statements: true };
      const first = acquireInstanceLock({ data_dir: other, db })!;
      assert.deepEqual(first.paths, [join(other, 'wharf.lock'), join(dir, 'shared.db.lock')]);
      // Another data directory, the same database: refused.
      const third = await mkdtemp(join(tmpdir(), 'wharf-lock-third-'));
      try {
        assert.throws(() => acquireInstanceLock({ data_dir: third, db }), StartupError);
      } finally {
        await rm(third, { recursive: true, force: true });
      }
      first.release();
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('PostgreSQL and in-memory SQLite take no lock', () => {
    assert.equal(acquireInstanceLock({ data_dir: dir, db: { url: 'postgres://h/db', pool_size: 1, prepared_statements: true } }), undefined);
    assert.equal(acquireInstanceLock({ data_dir: dir, db: { url: 'sqlite::memory:', pool_size: 1, prepared_statements: true } }), undefined);
  });
});
