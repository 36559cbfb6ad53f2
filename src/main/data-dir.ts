/**
 * `data_dir` made ready before anything is opened in it: created when missing, and proven to be a
 * directory this user can write (a probe file is written and removed, which also catches read-only
 * mounts). Every problem is a StartupError naming the directory and what to do.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from './startup-error.js';

const FIX = 'set data_dir (WHARF_DATA_DIR) to a directory the user running Wharf may write';

export function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new StartupError(`data_dir ${dir} is a file, not a directory; ${FIX}`);
    if (code === 'ENOTDIR') throw new StartupError(`data_dir ${dir} cannot be created: a part of its path is a file; ${FIX}`);
    throw new StartupError(`data_dir ${dir} cannot be created (${reason(err)}${uid()}); ${FIX}`);
  }
  if (!statSync(dir).isDirectory()) throw new StartupError(`data_dir ${dir} is not a directory; ${FIX}`);
  const probe = join(dir, `.write-probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (err) {
    throw new StartupError(`data_dir ${dir} is not writable (${reason(err)}${uid()}): give that user write access to it, or ${FIX}`);
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text: Record<string, string> = { EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system', ENOSPC: 'no space left on the device' };
  return (e.code && text[e.code]) ?? e.code ?? e.message;
}

function uid(): string {
  return typeof process.getuid === 'function' ? ` for uid ${process.getuid()}` : '';
}
