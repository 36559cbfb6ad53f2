/**
 * The recycled buffers blob fills copy upstream bytes into (blob-fill-pump.ts). A fill takes a few
 * slots, gives each back once storage holds its bytes, and the next fill reuses them: a fill allocates
 * almost nothing per byte, so the upstream's chunks die young and V8 never has to collect a heap full of
 * buffers that waited to be written and read.
 *
 * Slots are taken first from `aligned`, when given: page-aligned buffers (storage/aligned-buffers.ts,
 * made in main/) that the filesystem driver writes around the page cache as they are, without copying
 * them into a staging buffer first. Slots beyond them are plain buffers.
 */
export interface SlotPool {
  /** Size of every buffer. */
  readonly bytes: number;
  /** A buffer, or undefined when all are in use. */
  take(): Buffer | undefined;
  give(buffer: Buffer): void;
  readonly idle: number;
}

export class FillSlots {
  private readonly free: Buffer[] = [];
  private readonly aligned: SlotPool | undefined;
  /** Slots that came from `aligned` and go back there. */
  private readonly fromPool = new WeakSet<Buffer>();

  /**
   * Slots of `slotBytes`; at most `keep` idle ones are kept for the next fill (the rest are dropped).
   */
  constructor(
    readonly slotBytes: number,
    private readonly keep: number,
    aligned?: SlotPool,
  ) {
    this.aligned = aligned?.bytes === slotBytes ? aligned : undefined;
  }

  /** A slot of `slotBytes`; its contents are whatever the last user left (write before reading). */
  take(): Buffer {
    const pooled = this.aligned?.take();
    if (pooled) {
      this.fromPool.add(pooled);
      return pooled;
    }
    const slot = this.free.pop();
    if (slot) return slot;
    return Buffer.allocUnsafeSlow(this.slotBytes);
  }

  /** Returns a slot nobody reads or writes any more. */
  give(slot: Buffer): void {
    if (this.aligned && this.fromPool.has(slot)) return this.aligned.give(slot);
    if (this.free.length < this.keep && slot.byteLength === this.slotBytes) this.free.push(slot);
  }

  /** Idle slots kept (aligned ones included). */
  get idle(): number {
    return this.free.length + (this.aligned?.idle ?? 0);
  }
}
