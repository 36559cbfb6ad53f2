/**
 * OCI distribution-spec conformance (all four workflows) against a real
 * `wharf serve` process. The suite itself lives in ./conformance.ts.
 */
import { after, before } from 'node:test';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';
import { runConformance } from './conformance.js';

let wharf: WharfProcess | undefined;

before(async () => {
  wharf = await startWharf();
});

after(async () => {
  await wharf?.stop();
});

runConformance({
  // resolved lazily: the process is only started by the before() hook
  get url(): string {
    if (!wharf) throw new Error('wharf is not running (startup failed?)');
    return wharf.url;
  },
  namespace: 'conformance/app',
  crossmountNamespace: 'conformance/other',
}, {
  // Wharf mounts a blob without `from` when the caller can already read it elsewhere.
  automaticCrossmount: true,
});
