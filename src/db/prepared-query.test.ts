import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { DIALECTS, createPostgresDatabase, openTestDatabase } from '../../test/helpers/databases.js';
import { openDatabase, type DatabaseHandle } from './connect.js';
import { PreparedQuery } from './prepared-query.js';

/** Compiled for the database's dialect, as the stores build theirs. */
const byNameOn = (db: DatabaseHandle['db']) =>
  new PreparedQuery<{ id: number; name: string }, { name: string }>((p) => db.selectFrom('namespaces').select(['id', 'name']).where('name', '=', p.name).where('kind', '=', 'org'), ['name']);

for (const dialect of DIALECTS) {
  describe(`PreparedQuery (${dialect})`, () => {
    let h: DatabaseHandle;
    let byName: ReturnType<typeof byNameOn>;
    before(async () => {
      h = await openTestDatabase(dialect);
      byName = byNameOn(h.db);
      const now = Date.now();
      await h.db
        .insertInto('namespaces')
        .values(['alpha', 'beta', 'gamma'].map((name) => ({ name, kind: 'org', created_at: now }) as never))
        .execute();
    });
    after(() => h.close());

    it('answers as the query it was built from, for every value, outside and inside a transaction', async () => {
      for (const name of ['alpha', 'beta', 'gamma', 'missing', "it's"]) {
        const direct = await h.db.selectFrom('namespaces').select(['id', 'name']).where('name', '=', name).where('kind', '=', 'org').execute();
        assert.deepEqual(await byName.execute(h.db, { name }), direct, name);
      }
      await h.db.transaction().execute(async (trx) => {
        await trx.insertInto('namespaces').values({ name: 'delta', kind: 'org', created_at: Date.now() } as never).execute();
        // Inside the transaction the read sees the transaction's own row.
        assert.equal((await byName.first(trx, { name: 'delta' }))?.name, 'delta');
      });
      assert.equal((await byName.first(h.db, { name: 'delta' }))?.name, 'delta');
    });
  });
}

describe('PreparedQuery on PostgreSQL: named statements', () => {
  async function statementsAfterARead(prepared: boolean): Promise<string[]> {
    const database = await createPostgresDatabase();
    // One connection: the read and the look at pg_prepared_statements (per session) share it.
    const h = await openDatabase({ url: database.url, dataDir: tmpdir(), poolSize: 1, preparedStatements: prepared });
    try {
      const byName = byNameOn(h.db);
      await byName.execute(h.db, { name: 'alpha' });
      await byName.execute(h.db, { name: 'beta' });
      const rows = await sql<{ name: string }>`select name from pg_prepared_statements`.execute(h.db);
      return rows.rows.map((r) => r.name);
    } finally {
      await h.close();
      await database.drop();
    }
  }

  it('plans a prepared read once per connection under one name', async () => {
    const names = (await statementsAfterARead(true)).filter((n) => n.startsWith('wharf_'));
    assert.equal(names.length, 1, `statements: ${names.join(', ')}`);
  });

  it('leaves statements unnamed with db.prepared_statements off', async () => {
    assert.deepEqual((await statementsAfterARead(false)).filter((n) => n.startsWith('wharf_')), []);
  });
});
