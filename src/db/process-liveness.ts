/**
 * Which processes on a PostgreSQL database are alive, with nothing but PostgreSQL: each `wharf serve`
 * holds a session lock on its id (`DialectAdapter.processLock`) on a connection of its own, outside the
 * pool, for its whole life. The server drops the lock the moment that connection closes, which is the
 * moment the process dies (even by SIGKILL or a lost machine, once TCP notices). A claim stamped with
 * the process's id (an upload's chunk, a blob fill, a replication job, a GC pass, a mirror run, a
 * writer's guard against GC) may then be taken over at once instead of when it expires
 * (`DialectAdapter.processGone`, checked in the statement that takes over).
 *
 * The connection may also drop while the process lives (the database restarted, a network cut): the
 * process is then taken for dead, and its claims may be taken over. It reconnects and takes its lock
 * again on its own, backing off up to `maxRetryMs`. Meanwhile it goes on serving: whatever it commits
 * under a claim is checked against the claim's row first, and a claim taken over is no longer its own.
 */

/** The connection the lock lives on: a pg `Client` (only what is used of it). */
export interface LivenessConnection {
  query(text: string, values?: unknown[]): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  end(): Promise<void>;
}

export interface ProcessLivenessOptions {
  /** Opens a new connection to the database (not one of the pool's). */
  connect(): Promise<LivenessConnection>;
  /** The statement that takes this process's lock (`DialectAdapter.processLock`, compiled). */
  lock: { sql: string; parameters: readonly unknown[] };
  /** The lock was lost while the process runs (its claims may be taken over until it is held again). */
  onLost?(err: Error): void;
  /** The lock is held again after a loss. */
  onRegained?(): void;
  /** First delay before reconnecting (ms, default 250); it doubles up to `maxRetryMs` (default 2000). */
  retryMs?: number;
  maxRetryMs?: number;
}

export class ProcessLiveness {
  private conn: LivenessConnection | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: ProcessLivenessOptions) {}

  /** Whether the lock is held now. */
  get held(): boolean {
    return this.conn !== undefined;
  }

  /** Takes the lock; rejects when the database cannot be reached (the caller fails its start). */
  async start(): Promise<void> {
    await this.take();
  }

  /** Releases the lock (closes its connection) and stops reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const conn = this.conn;
    this.conn = undefined;
    await conn?.end().catch(() => undefined);
  }

  private async take(): Promise<void> {
    const conn = await this.opts.connect();
    let lost = false;
    const lose = (err: Error) => {
      if (lost) return;
      lost = true;
      this.lost(conn, err);
    };
    conn.on('error', lose);
    conn.on('end', () => lose(new Error('the connection holding the liveness lock closed')));
    try {
      await conn.query(this.opts.lock.sql, [...this.opts.lock.parameters]);
    } catch (err) {
      lost = true;
      await conn.end().catch(() => undefined);
      throw err;
    }
    if (lost) throw new Error('the connection holding the liveness lock closed while taking it');
    if (this.closed) {
      await conn.end().catch(() => undefined);
      return;
    }
    this.conn = conn;
  }

  private lost(conn: LivenessConnection, err: Error): void {
    void conn.end().catch(() => undefined);
    if (this.conn !== conn) return; // not taken yet (take() reports it) or already replaced
    this.conn = undefined;
    if (this.closed) return;
    this.opts.onLost?.(err);
    this.reconnect(this.opts.retryMs ?? 250);
  }

  private reconnect(delay: number): void {
    this.retry = setTimeout(() => {
      this.take().then(
        () => {
          if (!this.closed) this.opts.onRegained?.();
        },
        () => {
          if (!this.closed) this.reconnect(Math.min(delay * 2, this.opts.maxRetryMs ?? 2000));
        },
      );
    }, delay);
    // The process is kept alive by what it serves, not by this.
    this.retry.unref();
  }
}
