/**
 * Each namespace's time-machine window: how long deleted, moved and expired tags stay restorable
 * (Quay's `removed_tag_expiration_s`, set through `tag_expiration_s`). A namespace has the registry's
 * `gc.time_machine_default` unless it chose one of `gc.time_machine_options`; garbage collection deletes
 * history past the window.
 */
import type { TimeMachineStore } from '../db/time-machine-store.js';
import { AccountError } from './accounts/account-error.js';

export class TimeMachineService {
  private readonly defaultS: number;
  private readonly optionsS: readonly number[];

  constructor(
    private readonly store: TimeMachineStore,
    opts: { defaultS: number; optionsS: readonly number[] },
  ) {
    this.defaultS = opts.defaultS;
    this.optionsS = [...opts.optionsS].sort((a, b) => a - b);
  }

  /** The values a namespace may choose, in seconds, ascending. */
  get options(): readonly number[] {
    return this.optionsS;
  }

  /** The namespace's window in seconds (its own, else the default); not_found when there is no such namespace. */
  async windowOf(namespace: string): Promise<number> {
    const row = await this.store.get(namespace);
    if (!row) throw new AccountError('not_found', `namespace ${namespace.slice(0, 100)} not found`);
    return row.windowS ?? this.defaultS;
  }

  /** invalid_request unless `seconds` is one of the options. */
  assertOption(seconds: number): void {
    if (!this.optionsS.includes(seconds)) {
      const allowed = this.optionsS.map((s) => `${s} (${formatDuration(s * 1000)})`).join(', ');
      throw new AccountError('invalid_request', `tag_expiration_s must be one of ${allowed}`);
    }
  }

  /** Sets the namespace's window; invalid_request unless it is one of the options. Returns the previous window. */
  async setWindow(namespace: string, seconds: number): Promise<{ previous: number }> {
    this.assertOption(seconds);
    const previous = await this.windowOf(namespace);
    await this.store.set(namespace, seconds);
    return { previous };
  }
}

const UNITS: ReadonlyArray<[string, number]> = [
  ['w', 604_800_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A duration in the largest unit that divides it exactly ("2w", "36h", "0s"), as in the configuration. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
