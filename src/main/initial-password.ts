/**
 * `<data_dir>/initial-admin-password`: the generated password of the first superuser, kept (mode 0600,
 * owner only) until that password is changed, so that a start whose output was lost, or that failed
 * after creating the user (port in use, say), never locks the operator out.
 *
 * The password is written to `initial-admin-password.<pid>` before the superuser is created and renamed
 * to its final name once it is (a replica that lost the race to create it removes its own file). The
 * file is deleted when the superuser's password is set through the account services (`wharf user
 * passwd`, the API) in a process using this data directory, and at every start when the password in it
 * no longer logs in (it was changed elsewhere, e.g. through another replica).
 */
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

export function initialPasswordPath(dataDir: string): string {
  return join(dataDir, INITIAL_PASSWORD_FILE);
}

/** A file being written for a superuser not created yet: `commit()` gives it its final name, `discard()` removes it. */
export function stageInitialPassword(dataDir: string, password: string): { path: string; commit(): string; discard(): void } {
  const path = join(dataDir, `${INITIAL_PASSWORD_FILE}.${process.pid}`);
  writeFileSync(path, `${password}\n`, { mode: 0o600 });
  return {
    path,
    commit: () => {
      try {
        renameSync(path, initialPasswordPath(dataDir));
      } catch (err) {
        // A replica sharing this directory that started meanwhile already gave it its final name.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      return initialPasswordPath(dataDir);
    },
    discard: () => rmSync(path, { force: true }),
  };
}

/** Every password file in the data directory (the final one first, then files a crash left staged), with its password. */
export function initialPasswordFiles(dataDir: string): Array<{ path: string; password: string }> {
  let names: string[];
  try {
    names = readdirSync(dataDir).filter((n) => n === INITIAL_PASSWORD_FILE || (n.startsWith(`${INITIAL_PASSWORD_FILE}.`) && /^\d+$/.test(n.slice(INITIAL_PASSWORD_FILE.length + 1))));
  } catch {
    return [];
  }
  names.sort((a, b) => (a === INITIAL_PASSWORD_FILE ? -1 : b === INITIAL_PASSWORD_FILE ? 1 : a.localeCompare(b)));
  return names.map((n) => ({ path: join(dataDir, n), password: readFileSync(join(dataDir, n), 'utf8').replace(/\r?\n$/, '') }));
}

/** Deletes the file; true when there was one. */
export function forgetInitialPassword(dataDir: string): boolean {
  try {
    rmSync(initialPasswordPath(dataDir));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
