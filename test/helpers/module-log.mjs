/**
 * `node --import ./test/helpers/module-log.mjs`: appends to the file named by WHARF_TEST_MODULE_LOG the
 * URL of every ES module the process resolves (as it resolves it) and, when the process exits, the
 * path of every CommonJS module it loaded (require.cache). For tests of what a process loads.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const file = process.env.WHARF_TEST_MODULE_LOG;
if (!file) throw new Error('module-log.mjs needs WHARF_TEST_MODULE_LOG');
register('./module-log-hook.mjs', import.meta.url, { data: { file } });
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => appendFileSync(file, Object.keys(cache).map((p) => `cjs:${p}\n`).join('')));
