/**
 * A fresh PostgreSQL database for one benchmark run on a server named by an admin URL (scripts/bench.sh
 * starts a throw-away cluster), dropped afterwards; and the server processes (backends) that serve it,
 * whose CPU time is the database's share of a measurement.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

export interface BenchDatabase {
  /** `postgres://…/<name>`: what the Wharf processes are given. */
  url: string;
  /** PIDs of the backends connected to this database right now. */
  backendPids(): Promise<number[]>;
  /**
   * The server's processes as a list made anew on every call (every child of the postmaster: backends
   * of connections opened later count too), when the server runs on this machine and its data directory
   * is readable; otherwise the backends connected now.
   */
  serverProcesses(): Promise<number[] | (() => number[])>;
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
    serverProcesses: async () => {
      try {
        const dir = await admin(async (c) => (await c.query<{ data_directory: string }>('show data_directory')).rows[0]!.data_directory);
        const postmaster = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        if (!Number.isSafeInteger(postmaster) || postmaster <= 0) throw new Error('no postmaster PID');
        return () => childrenOf(postmaster);
      } catch {
        return admin(async (c) => (await c.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name])).rows.map((r) => r.pid));
      }
    },
    backendPids: () => admin(async (c) => (await c.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name])).rows.map((r) => r.pid)),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

/** The processes whose parent is `ppid`, and `ppid` itself (from /proc). */
function childrenOf(ppid: number): number[] {
  const out = [ppid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
