/**
 * How the operator runs this CLI, for hints printed to them: `wharf` when it was started through a
 * `wharf` command on the PATH (`npm link`, a global install), otherwise `node bin/wharf.js` (run from the
 * checkout) or `node /absolute/path/bin/wharf.js` (run from elsewhere).
 */
import { existsSync } from 'node:fs';
import { basename, delimiter, dirname, join, relative, resolve } from 'node:path';

export function commandName(argv1: string | undefined = process.argv[1], env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  if (argv1 && basename(argv1) === 'wharf') {
    const dir = resolve(dirname(argv1));
    const onPath = (env.PATH ?? '').split(delimiter).some((p) => p !== '' && resolve(cwd, p) === dir);
    return onPath ? 'wharf' : resolve(argv1);
  }
  const bin = resolve(import.meta.dirname, '..', '..', 'bin', 'wharf.js');
  if (!existsSync(bin)) return 'wharf';
  return `node ${relative(cwd, bin) === join('bin', 'wharf.js') ? join('bin', 'wharf.js') : bin}`;
}
