/**
 * The recycled buffers blob fills copy upstream bytes into (blob-fill-pump.ts). A fill takes a few
 * slots, gives each back once storage holds its bytes, and the next fill reuses them: a fill allocates
 * almost nothing per byte, so the upstream's chunks die young and V8 never has to collect a heap full of
 * buffers that waited to be written and read.
 */
export class FillSlots {
  private readonly free: Buffer[] = [];

  /**
   * Slots of `slotBytes`; at most `keep` idle ones are kept for the next fill (the rest are dropped).
   */
  constructor(
    readonly slotBytes: number,
    private readonly keep: number,
  ) {}

  /** A slot of `slotBytes`; its contents are whatever the last user left (write before reading). */
  take(): Buffer {
    const slot = this.free.pop();
    if (slot) return slot;
    return Buffer.allocUnsafeSlow(this.slotBytes);
  }

  /** Returns a slot nobody reads or writes any more. */
  give(slot: Buffer): void {
    if (this.free.length < this.keep && slot.byteLength === this.slotBytes) this.free.push(slot);
  }

  /** Idle slots kept. */
  get idle(): number {
    return this.free.length;
  }
}
