// Types of scripts/check-imports.mjs, for test/check-imports.test.ts.
export interface ImportRef {
  /** Undefined for a dynamic import of a computed specifier. */
  specifier: string | undefined;
  kind: string;
  line: number;
  /** Local names a value import binds. */
  names: string[];
  /** The local name of `import * as` or `import x = require()`. */
  namespace?: string;
}
export interface Violation {
  file: string;
  line: number;
  specifier: string;
  kind: string;
  message: string;
}
export type Target =
  | { type: 'layer'; layer: string; module: string }
  | { type: 'test' }
  | { type: 'outside'; where: string }
  | { type: 'builtin' }
  | { type: 'package'; name: string };
export const LAYERS: Record<string, readonly string[] | '*'>;
export const EXCEPTIONS: Record<string, readonly string[]>;
export const PACKAGES: Record<string, readonly string[]>;
export const CONSTRUCTED: readonly string[];
export const CONSTRUCTS: readonly string[];
export function isTestFile(path: string): boolean;
export function importsOf(path: string, text: string): ImportRef[];
export function targetOf(path: string, specifier: string): Target;
export function checkFile(path: string, text: string): Violation[];
export function sourceFiles(dir?: string, root?: string): string[];
export function checkTree(root?: string): { files: string[]; violations: Violation[] };
