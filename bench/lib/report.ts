/**
 * The benchmarks' summary table: Wharf against Distribution (or any two measurements: `columns`), their
 * ratio, the target and PASS or MISS.
 */
import { DISTURBED_CORES, fmt, lpad, pad } from './measure.js';

export interface Row {
  metric: string;
  wharf: number;
  dist: number;
  /** min–max over the repetitions, when there were several. */
  wharfRange?: [number, number];
  distRange?: [number, number];
  /** How many runs of each the median is taken over (undisturbed ones), and of how many. */
  used?: [number, number];
  runs?: number;
  unit: string;
  digits: number;
  /** Leave the ratio column empty (the ratio means nothing for this row). */
  noRatio?: boolean;
  /** Print a sign (differences). */
  signed?: boolean;
  target?: string;
  pass?: boolean;
  /** Not measured: the row shows this note instead of figures (e.g. the build lacks the feature). */
  na?: string;
}

const W = [50, 12, 14, 8, 24, 6];

/**
 * The table (heading lines first), then the spread of every row measured more than once. `columns`
 * names the two measured columns (the ratio is first / second).
 */
export function renderTable(heading: string[], rows: Row[], columns: [string, string] = ['Wharf', 'Distribution']): string[] {
  const [first, second] = columns;
  const cell = (v: number, r: Row) => `${r.signed && v >= 0 ? '+' : ''}${fmt(v, r.digits)} ${r.unit}`;
  const lines = [
    '',
    ...heading,
    '',
    pad('metric', W[0]!) + lpad(first, W[1]!) + lpad(second, W[2]!) + lpad('ratio', W[3]!) + '  ' + pad('target', W[4]!) + 'result',
    '-'.repeat(W.reduce((a, b) => a + b, 2)),
  ];
  for (const r of rows) {
    if (r.na !== undefined) {
      lines.push(pad(r.metric, W[0]!) + lpad(r.na, W[1]! + W[2]! + W[3]!) + '  ' + (r.target ?? ''));
      continue;
    }
    lines.push(
      pad(r.metric, W[0]!) +
        lpad(cell(r.wharf, r), W[1]!) +
        lpad(cell(r.dist, r), W[2]!) +
        lpad(r.noRatio ? '' : `${fmt(r.wharf / r.dist, 2)}×`, W[3]!) +
        '  ' +
        pad(r.target ?? '', W[4]!) +
        (r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS'),
    );
  }
  const ranged = rows.filter((r) => r.na === undefined && r.wharfRange && r.distRange && (r.runs ?? 0) > 1);
  if (ranged.length) {
    lines.push('', `Spread over all runs (min–max), and how many undisturbed runs the medians use (other processes < ${DISTURBED_CORES} cores):`);
    for (const r of ranged) {
      lines.push(
        `  ${pad(r.metric, W[0]! - 2)}${first} ${fmt(r.wharfRange![0], r.digits)}–${fmt(r.wharfRange![1], r.digits)}, ` +
          `${second} ${fmt(r.distRange![0], r.digits)}–${fmt(r.distRange![1], r.digits)} ${r.unit}; medians of ${r.used![0]} and ${r.used![1]} of ${r.runs} runs`,
      );
    }
  }
  return lines;
}
