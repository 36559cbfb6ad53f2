#!/usr/bin/env node
// Runs the compiled command (npm run build produces dist/; main/wharf.ts is its entry). A checkout
// that was never built, or whose dependencies are missing, gets one line saying what to run instead
// of a stack trace.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = pathToFileURL(join(root, 'dist', 'main', 'wharf.js')).href;
try {
  await import(cli);
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  const missing = String(err.url ?? err.message);
  process.stderr.write(
    missing === cli
      ? `wharf: not built yet: run \`npm run build\` in ${root} (\`npm start\` builds and serves)\n`
      : `wharf: a dependency is missing (${err.message.split('\n')[0]}): run \`npm ci\` in ${root}\n`,
  );
  process.exit(1);
}
