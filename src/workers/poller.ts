/**
 * The loop every background worker runs: one pass every poll period, never two at once, errors
 * logged and the loop kept alive; `stop()` ends the loop and waits for the pass in progress.
 */
export class Poller {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<unknown> | undefined;
  private stopping = false;
  private again = false;

  constructor(
    private readonly pass: () => Promise<unknown>,
    private readonly pollMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** True from `stop()` on: a pass in progress should end at its next safe point. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Polls until `stop()`; the first pass comes after one poll period. */
  start(): void {
    this.stopping = false;
    this.schedule();
  }

  /**
   * Runs a pass soon rather than at the end of the period: at once when the poller is waiting, right
   * after the pass in progress when one runs. No effect before `start()` or after `stop()`.
   */
  wake(): void {
    if (this.stopping) return;
    if (this.current) {
      this.again = true;
      return;
    }
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.schedule(0);
  }

  /** Stops polling and waits for the pass in progress (if any). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.current?.catch(() => {});
  }

  private schedule(delayMs = this.pollMs): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.again = false;
      this.current = this.pass()
        .catch(this.onError)
        .finally(() => {
          this.current = undefined;
          this.schedule(this.again ? 0 : this.pollMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
