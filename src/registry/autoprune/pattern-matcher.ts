/**
 * Tag patterns are regular expressions written by namespace admins, run by the worker inside the
 * registry process. A pathological one (`(a+)+$`) could backtrack for minutes and stall every request,
 * so patterns run in a separate V8 context with a time limit: a pattern that needs longer than
 * `timeoutMs` for one repository's tags fails that policy (PatternTimeoutError) instead.
 */
import { Script, createContext, type Context } from 'node:vm';

export class PatternTimeoutError extends Error {
  constructor(readonly pattern: string, timeoutMs: number) {
    super(`tag_pattern ${JSON.stringify(pattern.slice(0, 100))} took longer than ${timeoutMs} ms to match; simplify it`);
    this.name = 'PatternTimeoutError';
  }
}

const SCRIPT = new Script('(() => { const re = new RegExp(pattern, flags); return names.map((n) => { re.lastIndex = 0; return re.test(n); }); })()');

export class PatternMatcher {
  private readonly context: Context = createContext({});
  private readonly timeoutMs: number;

  constructor(opts: { timeoutMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /**
   * For each name, whether `pattern` is found in it (an unanchored search, like Quay's auto-prune), or
   * with `atStart` whether it matches at the start of it (like Python's `re.match`, which Quay's
   * immutability policies use).
   */
  matches(pattern: string, names: readonly string[], opts: { atStart?: boolean } = {}): boolean[] {
    if (names.length === 0) return [];
    this.context.pattern = pattern;
    this.context.flags = opts.atStart ? 'y' : '';
    this.context.names = names;
    try {
      return Array.from(SCRIPT.runInContext(this.context, { timeout: this.timeoutMs }) as ArrayLike<boolean>, Boolean);
    } catch (err) {
      if ((err as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new PatternTimeoutError(pattern, this.timeoutMs);
      throw err;
    } finally {
      this.context.names = undefined;
    }
  }
}
