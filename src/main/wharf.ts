/**
 * The entry of the `wharf` command (bin/wharf.js): sizes V8's young generation before anything else
 * is parsed (main/young-generation.ts), then loads and runs the command line (main/cli.ts).
 */
import { pinYoungGeneration } from './young-generation.js';

pinYoungGeneration();
await import('./cli.js');
