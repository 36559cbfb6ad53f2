/**
 * Account setup for e2e tests against a running `wharf serve`: opens the same database (SQLite in its
 * data directory, or its WHARF_DB_URL) and calls the account services directly, as `wharf org create`
 * and `wharf robot create` would.
 */
import { loadConfig } from '../../src/config/load.js';
import { createAccountServices } from '../../src/main/compose.js';
import { openDatabase } from '../../src/db/connect.js';
import type { Accounts } from '../../src/registry/accounts/accounts.js';
import { RepositoryService } from '../../src/registry/repositories.js';
import { RepositoryStore } from '../../src/db/repository-store.js';
import type { RepositoryName } from '../../src/oci/reference.js';
import type { RepositoryRole } from '../../src/registry/accounts/roles.js';

export interface AccountsTarget {
  dataDir: string;
  dbUrl: string;
  admin: { username: string };
}

export type AccountsHandle = Accounts & { repositories: RepositoryService };

/**
 * The account services and the repository service of the process's database, kept open until
 * `close()` (for a suite that asks many questions; `withAccounts` for one batch of changes).
 */
export async function openAccounts(w: AccountsTarget): Promise<AccountsHandle & { close(): Promise<void> }> {
  const db = await openDatabase({ url: w.dbUrl, dataDir: w.dataDir, poolSize: 2 });
  try {
    const config = loadConfig({ env: {}, overrides: { data_dir: w.dataDir, log_level: 'silent' } });
    const repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect));
    return { ...createAccountServices(db, config, repositories), repositories, close: () => db.close() };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Runs `fn` with the account services and the repository service of the process's database. */
export async function withAccounts<T>(w: AccountsTarget, fn: (a: AccountsHandle) => Promise<T>): Promise<T> {
  const { close, ...a } = await openAccounts(w);
  try {
    return await fn(a);
  } finally {
    await close();
  }
}

/** Creates each organization (owned by the admin) that does not exist yet. */
export async function ensureOrganizations(w: AccountsTarget, names: readonly string[]): Promise<void> {
  await withAccounts(w, async (a) => {
    for (const name of names) if (!(await a.accounts.getOrganization(name))) await a.accounts.createOrganization({ name, creator: w.admin.username });
  });
}

/**
 * Creates robot `<namespace>+<short>` with `role` on each repository (created private when missing);
 * returns its credentials.
 */
export async function createRobot(w: AccountsTarget, fullName: string, repositories: readonly string[], role: RepositoryRole = 'write'): Promise<{ username: string; password: string }> {
  const [namespace, short] = fullName.split('+') as [string, string];
  return withAccounts(w, async (a) => {
    const { robot, token } = await a.robots.create(namespace, short);
    for (const name of repositories) {
      const repo = (await a.repositories.details(name as RepositoryName)) ?? (await a.repositories.create(name as RepositoryName, { visibility: 'private' })).repository;
      await a.grants.setRepositoryPermission(repo, { kind: 'robot', name: robot.name }, role);
    }
    return { username: robot.name, password: token };
  });
}
