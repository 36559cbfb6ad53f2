/**
 * The 1 MiB buffers that blob GETs pump bytes through (send-blob.ts), kept between requests: a pull
 * takes its buffers from here and gives them back once the socket has taken their bytes, so a
 * registry serving pull after pull allocates none, and an idle one is not left holding the dead
 * buffers of its last pulls until V8 next collects (nothing collects while it idles). At most
 * `maxIdle` wait here; more, given back after a burst of parallel pulls, are left to the collector.
 */
export class BlobBuffers {
  private readonly idle: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly maxIdle: number,
  ) {}

  /** A buffer of `size` bytes, its content undefined; the caller owns it until it gives it back. */
  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives back a buffer from `take` that nothing reads or writes any more. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.idle.length < this.maxIdle) this.idle.push(buffer);
  }

  /** Buffers waiting to be taken. */
  get waiting(): number {
    return this.idle.length;
  }
}
