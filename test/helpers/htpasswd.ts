/**
 * bcrypt htpasswd files — the only kind Distribution's htpasswd auth accepts — written with Debian's
 * `htpasswd` (apache2-utils). The password goes over stdin (`-i`), so any characters are fine.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

export const HTPASSWD_BIN = process.env.HTPASSWD_BIN ?? 'htpasswd';

/** One `user:$2y$…` line. bcrypt cost 4 (the minimum) by default: tests want speed, not strength. */
export function htpasswdLine(username: string, password: string, cost = 4): Promise<string> {
  if (username.includes(':') || /\s/.test(username)) throw new Error(`htpasswd: bad user name ${JSON.stringify(username)}`);
  return new Promise((resolve, reject) => {
    const child = spawn(HTPASSWD_BIN, ['-n', '-B', '-i', '-C', String(cost), username], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', (e) => reject(new Error(`cannot run ${HTPASSWD_BIN} (Debian package apache2-utils): ${e.message}`)));
    child.once('close', (code) => {
      const line = out.trim();
      if (code === 0 && line.startsWith(`${username}:$2`)) resolve(line);
      else reject(new Error(`${HTPASSWD_BIN} failed (exit ${code}): ${err.trim() || out.trim()}`));
    });
    child.stdin.end(password);
  });
}

/** Writes an htpasswd file with one bcrypt entry per user. */
export async function writeHtpasswd(path: string, users: Readonly<Record<string, string>>): Promise<void> {
  const lines = await Promise.all(Object.entries(users).map(([name, password]) => htpasswdLine(name, password)));
  await writeFile(path, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
}
