/**
 * Sizes as people write them, in the forms Quay accepts (bitmath's `parse_string_unsafe`) and shows
 * (`best_prefix()` formatted as `"{value:.1f} {unit}"`):
 *
 *   size   = number [ws] [unit]                 number = digits ["." digits] | "." digits
 *   unit   = B | Byte(s)                          bytes (also no unit at all)
 *          | KiB MiB GiB TiB PiB EiB | Ki … Ei     binary (1024^n)
 *          | K M G T P E                          binary, as bitmath's default (NIST) system reads them
 *          | KB MB GB TB PB EB                    decimal (1000^n)
 *
 * Units are case-insensitive ("10 gib", "100kb"). A fractional result is rounded down to whole bytes
 * ("1.5 KB" is 1500, "0.5 B" is 0). Arithmetic is exact (BigInt), so "0.1 TiB" is what it says.
 */

const BINARY = ['', 'k', 'm', 'g', 't', 'p', 'e'] as const;

/** Bytes per unit, by unit in lower case. */
const UNITS: ReadonlyMap<string, bigint> = (() => {
  const m = new Map<string, bigint>([
    ['', 1n],
    ['b', 1n],
    ['byte', 1n],
    ['bytes', 1n],
  ]);
  BINARY.forEach((p, i) => {
    if (!p) return;
    const binary = 1024n ** BigInt(i);
    m.set(p, binary).set(`${p}i`, binary).set(`${p}ib`, binary).set(`${p}b`, 1000n ** BigInt(i));
  });
  return m;
})();

const SIZE_RE = /^\s*(\d{1,30})?(?:\.(\d{1,30}))?\s*([A-Za-z]{0,5})\s*$/;

/** The bytes `text` means (fractions rounded down); undefined when it is no size. */
export function parseSize(text: string): bigint | undefined {
  const m = SIZE_RE.exec(text);
  if (!m || (m[1] === undefined && m[2] === undefined)) return undefined;
  const unit = UNITS.get(m[3]!.toLowerCase());
  if (unit === undefined) return undefined;
  const fraction = m[2] ?? '';
  const scale = 10n ** BigInt(fraction.length);
  return (BigInt(`${m[1] ?? '0'}${fraction}`) * unit) / scale;
}

const PREFIXES = ['Byte', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * Quay's human form of a size: the largest binary unit not above it, one decimal, rounded half to
 * even as Python's format does ("1.0 GiB", "500.0 Byte", "1.5 KiB", "8.0 PiB").
 */
export function formatSize(bytes: number): string {
  const b = BigInt(Math.max(0, Math.floor(bytes)));
  let i = 0;
  while (i < PREFIXES.length - 1 && b >= 1024n ** BigInt(i + 1)) i++;
  const d = 1024n ** BigInt(i);
  // tenths = round(b * 10 / d), ties to even.
  const n = b * 10n;
  let tenths = n / d;
  const twice = (n % d) * 2n;
  if (twice > d || (twice === d && tenths % 2n === 1n)) tenths += 1n;
  return `${tenths / 10n}.${tenths % 10n} ${PREFIXES[i]}`;
}
