/**
 * A small seeded pseudo-random generator (sfc32) for the fuzz tests: the same seed gives the same
 * sequence on every machine, so a failure is reproduced by running again with the seed it reports.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A float in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** One of the weighted generators, by weight. */
  weighted<T>(choices: ReadonlyArray<readonly [number, () => T]>): T {
    const total = choices.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, make] of choices) {
      if ((r -= w) < 0) return make();
    }
    return choices[choices.length - 1]![1]();
  }

  /** `length` characters drawn from `alphabet`. */
  text(alphabet: string, length: number): string {
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  bytes(length: number): Buffer {
    const b = Buffer.alloc(length);
    for (let i = 0; i < length; i++) b[i] = this.int(256);
    return b;
  }
}

/** The seed of this run: `WHARF_FUZZ_SEED` when set (a number, or `random`), else a fixed one. */
export function fuzzSeed(fallback: number): number {
  const given = process.env.WHARF_FUZZ_SEED;
  if (given === undefined || given === '') return fallback;
  if (given === 'random') return Math.floor(Math.random() * 2 ** 32);
  const n = Number(given);
  if (!Number.isInteger(n)) throw new Error(`WHARF_FUZZ_SEED must be an integer or "random", got ${given}`);
  return n >>> 0;
}
