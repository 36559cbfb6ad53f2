/**
 * Page-aligned buffers, for direct (O_DIRECT) file writes (fs/direct-writes.ts): its staging buffers,
 * and the slots proxy fills copy upstream bytes into, which it then writes without a copy.
 *
 * Direct I/O takes the bytes from the caller's memory, which must start on a page boundary. Node offers
 * no aligned allocation (a Buffer lies wherever malloc put it, usually 16 bytes past a page), but a
 * WebAssembly memory is always a mapping of its own, so its first byte is page-aligned. Each arena is
 * one such memory cut into `perArena` buffers; arenas are made on demand up to `maxArenas` and kept for
 * the life of the process (V8 reserves address space, not memory, for each one: only the pages written
 * become resident). When every buffer is out, `take` answers undefined and the writer writes through
 * the page cache instead.
 */

/** Direct I/O alignment: covers devices with 512-byte and 4 KiB logical blocks. */
export const DIRECT_BLOCK = 4096;
const WASM_PAGE = 64 * 1024;

/** The memory of every arena: a view into one of them at a block offset is page-aligned. */
const arenaMemory = new WeakSet<ArrayBufferLike>();

/** Whether `bytes` starts on a page boundary (known only for buffers from an AlignedBuffers arena). */
export function isPageAligned(bytes: Uint8Array): boolean {
  return bytes.byteOffset % DIRECT_BLOCK === 0 && arenaMemory.has(bytes.buffer);
}

export class AlignedBuffers {
  private readonly free: Buffer[] = [];
  private arenas = 0;

  /** `bytes`: a multiple of DIRECT_BLOCK. */
  constructor(
    readonly bytes: number,
    private readonly perArena: number,
    private readonly maxArenas: number,
  ) {
    if (bytes <= 0 || bytes % DIRECT_BLOCK !== 0) throw new Error(`aligned buffer size ${bytes} is not a positive multiple of ${DIRECT_BLOCK}`);
  }

  /** A buffer of `bytes`, page-aligned, its content undefined; undefined when all are in use. */
  take(): Buffer | undefined {
    const buffer = this.free.pop();
    if (buffer) return buffer;
    if (this.arenas >= this.maxArenas) return undefined;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: Math.ceil((this.bytes * this.perArena) / WASM_PAGE) });
    } catch {
      // Address space refused (e.g. a ulimit -v): write through the page cache.
      this.arenas = this.maxArenas;
      return undefined;
    }
    this.arenas++;
    arenaMemory.add(memory.buffer);
    for (let i = 1; i < this.perArena; i++) this.free.push(Buffer.from(memory.buffer, i * this.bytes, this.bytes));
    return Buffer.from(memory.buffer, 0, this.bytes);
  }

  /** Returns a buffer from `take` that nothing reads or writes any more. */
  give(buffer: Buffer): void {
    this.free.push(buffer);
  }

  /** Buffers not in use (in the arenas made so far). */
  get idle(): number {
    return this.free.length;
  }
}
