import { AlignedBuffers, isPageAligned } from '../../storage/aligned-buffers.js';

/**
 * The recycled buffers blob fills copy upstream bytes into (blob-fill-pump.ts). A fill takes a few
 * slots, gives each back once storage holds its bytes, and the next fill reuses them: a fill allocates
 * almost nothing per byte, so the upstream's chunks die young and V8 never has to collect a heap full of
 * buffers that waited to be written and read.
 *
 * The first `alignedArenas × 8` slots in use at once are page-aligned (storage/aligned-buffers.ts): the
 * filesystem driver writes them around the page cache as they are, without copying them into a staging
 * buffer first. Their memory stays with the process once made; slots beyond them are plain buffers.
 */
export class FillSlots {
  private readonly free: Buffer[] = [];
  private readonly aligned: AlignedBuffers | undefined;

  /**
   * Slots of `slotBytes`; at most `keep` idle ones are kept for the next fill (the rest are dropped).
   */
  constructor(
    readonly slotBytes: number,
    private readonly keep: number,
    alignedArenas = 0,
  ) {
    this.aligned = alignedArenas > 0 && slotBytes % 4096 === 0 ? new AlignedBuffers(slotBytes, 8, alignedArenas) : undefined;
  }

  /** A slot of `slotBytes`; its contents are whatever the last user left (write before reading). */
  take(): Buffer {
    const slot = this.aligned?.take() ?? this.free.pop();
    if (slot) return slot;
    return Buffer.allocUnsafeSlow(this.slotBytes);
  }

  /** Returns a slot nobody reads or writes any more. */
  give(slot: Buffer): void {
    if (this.aligned && isPageAligned(slot)) return this.aligned.give(slot);
    if (this.free.length < this.keep && slot.byteLength === this.slotBytes) this.free.push(slot);
  }

  /** Idle slots kept (aligned ones included). */
  get idle(): number {
    return this.free.length + (this.aligned?.idle ?? 0);
  }
}
