/**
 * Every database test runs on SQLite and on PostgreSQL. `scripts/test.sh` starts a throwaway
 * PostgreSQL cluster and exports WHARF_TEST_PG_URL; each test database is created and dropped here.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/connect.js';

export const DIALECTS = ['sqlite', 'postgres'] as const;
export type TestDialect = (typeof DIALECTS)[number];

export function postgresAdminUrl(): string {
  const url = process.env.WHARF_TEST_PG_URL;
  if (!url) throw new Error('WHARF_TEST_PG_URL is not set: run the suite with `npm test`, which starts PostgreSQL');
  return url;
}

/** A fresh, migrated, empty database of the dialect; `close()` drops it. */
export async function openTestDatabase(dialect: TestDialect): Promise<DatabaseHandle & { url: string }> {
  if (dialect === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-sqlite-'));
    const url = `sqlite:${join(dir, 'test.db')}`;
    const handle = await openDatabase({ url, dataDir: dir });
    return {
      ...handle,
      url,
      close: async () => {
        await handle.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const database = await createPostgresDatabase();
  const handle = await openDatabase({ url: database.url, dataDir: tmpdir(), poolSize: 5 });
  return {
    ...handle,
    url: database.url,
    close: async () => {
      await handle.close();
      await database.drop();
    },
  };
}

/** A fresh, empty PostgreSQL database (a Wharf process migrates it itself); `drop()` removes it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = postgresAdminUrl();
  const name = `wharf_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** The rows of one SQL statement on the PostgreSQL database at `url` (a connection of its own). */
export async function pgRows(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Another "process" on the migrated database at `url`: a handle of its own that holds `processId`'s
 * liveness lock (PostgreSQL) until it is closed, as a `wharf serve` does until it dies.
 */
export async function openProcessDatabase(url: string, processId: string): Promise<DatabaseHandle> {
  return openDatabase({ url, dataDir: tmpdir(), poolSize: 2, migrate: false, processId });
}
