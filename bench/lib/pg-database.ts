/**
 * A fresh PostgreSQL database for one benchmark run on a server named by an admin URL (scripts/bench.sh
 * starts a throw-away cluster), dropped afterwards; and the server processes (backends) that serve it,
 * whose CPU time is the database's share of a measurement.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface BenchDatabase {
  /** `postgres://…/<name>`: what the Wharf processes are given. */
  url: string;
  /** PIDs of the backends connected to this database right now. */
  backendPids(): Promise<number[]>;
  /** Drops the database (closing its connections). */
  drop(): Promise<void>;
}

export async function createBenchDatabase(adminUrl: string, namePrefix: string): Promise<BenchDatabase> {
  const name = `${namePrefix}_${randomBytes(5).toString('hex')}`;
  const admin = async <T>(f: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };
  await admin((c) => c.query(`create database ${name}`));
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    backendPids: () => admin(async (c) => (await c.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name])).rows.map((r) => r.pid)),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}
