import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSize, parseSize } from './size-text.js';

const KiB = 1024n;
const MiB = KiB * 1024n;
const GiB = MiB * 1024n;

describe('parseSize', () => {
  it('reads bytes, binary and decimal units in any case, with or without a space', () => {
    const cases: Array<[string, bigint]> = [
      ['1024', 1024n],
      ['  1024  ', 1024n],
      ['7 B', 7n],
      ['7 bytes', 7n],
      ['10 GiB', 10n * GiB],
      ['10gib', 10n * GiB],
      ['10Gi', 10n * GiB],
      ['10G', 10n * GiB],
      ['10 g', 10n * GiB],
      ['500 MiB', 500n * MiB],
      ['1.5 GB', 1_500_000_000n],
      ['100 KB', 100_000n],
      ['100 kb', 100_000n],
      ['100 K', 100n * KiB],
      ['2 TiB', 2n * 1024n * GiB],
      ['3 TB', 3_000_000_000_000n],
      ['1 PiB', 1024n * 1024n * GiB],
      ['1 PB', 10n ** 15n],
      ['1 EiB', 2n ** 60n],
      ['.5 KiB', 512n],
      ['0.1 TiB', (1024n * GiB) / 10n],
      ['1.1 KB', 1100n],
      ['0.5 B', 0n],
      ['0', 0n],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
  });

  it('refuses what is no size', () => {
    for (const text of ['', ' ', 'GiB', '10 XB', '10 GiBs', '-5', '1,5 GB', '1.2.3', '10 G B', '1e9', 'ten', '.', '5.']) assert.equal(parseSize(text), undefined, JSON.stringify(text));
  });
});

describe('formatSize', () => {
  it("gives Quay's human form: the largest binary unit, one decimal, ties to even", () => {
    const cases: Array<[number, string]> = [
      [0, '0.0 Byte'],
      [500, '500.0 Byte'],
      [1023, '1023.0 Byte'],
      [1024, '1.0 KiB'],
      [1536, '1.5 KiB'],
      [Number(GiB), '1.0 GiB'],
      [Number(10n * GiB), '10.0 GiB'],
      [1_500_000_000, '1.4 GiB'],
      // 1.25 GiB and 1.75 GiB are exact ties: Python's "{:.1f}" rounds them to even.
      [Number((GiB * 5n) / 4n), '1.2 GiB'],
      [Number((GiB * 7n) / 4n), '1.8 GiB'],
      [Number(MiB) - 1, '1024.0 KiB'],
      [Number.MAX_SAFE_INTEGER, '8.0 PiB'],
    ];
    for (const [bytes, text] of cases) assert.equal(formatSize(bytes), text, String(bytes));
  });
});
