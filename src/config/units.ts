/** Human sizes ("10 GiB", "512MB", 1048576) and durations ("30s", "2w", "1h30m") used in config and APIs. */

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** Parses a byte size; returns undefined for anything that is not a non-negative whole number of bytes. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const factor = unit === '' ? 1 : SIZE_UNITS[unit];
  if (factor === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration into milliseconds: a number of seconds, or a sequence like "1h30m", "7d", "2w". */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  const s = value.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const re = /(\d+)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === s.length && matched > 0 ? total : undefined;
}

/**
 * The latest time Wharf accepts or shows, the last millisecond of year 9999 (UTC): later times have
 * no four-digit-year ISO 8601 form, and past year 275760 JavaScript has no date for them at all.
 */
export const MAX_TIME_MS = 253_402_300_799_999;

/** Whether `ms` (since the epoch) is a time Wharf accepts: a whole number from 0 to MAX_TIME_MS. */
export function isTimeMs(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_TIME_MS;
}

/**
 * `ms` as a Date that can always be rendered: moved into year 0 to 9999 when it lies outside (a stored
 * time from before times were bounded, or a computed one such as a far end of a query window).
 */
export function renderableDate(ms: number): Date {
  const MIN = -62_167_219_200_000; // 0000-01-01T00:00:00Z
  return new Date(Number.isNaN(ms) ? MAX_TIME_MS : Math.min(Math.max(ms, MIN), MAX_TIME_MS));
}
