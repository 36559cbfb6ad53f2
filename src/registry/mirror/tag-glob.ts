/**
 * Tag globs of a mirror's `root_rule`, with the semantics of Python's `fnmatch.fnmatchcase` (what Quay
 * matches with), case-sensitive:
 *
 *   *        any run of characters, empty included
 *   ?        exactly one character
 *   [seq]    one character of seq (ranges `a-z`; a `]` first in seq is literal)
 *   [!seq]   one character not in seq
 *   other    itself; a `[` without a closing `]` is a literal `[`
 *
 * A tag is selected when any glob of the list matches the whole tag.
 */

/** The regular expression a glob stands for, anchored at both ends. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  let i = 0;
  const n = glob.length;
  while (i < n) {
    const c = glob[i++]!;
    if (c === '*') {
      out += '.*';
      while (glob[i] === '*') i++;
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      let j = i;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < n && glob[j] !== ']') j++;
      if (j >= n) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i, j);
      i = j + 1;
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      const set = [...body].map((ch) => (ch === '-' ? '-' : escapeClass(ch))).join('');
      out += set.length === 0 ? (negate ? '.' : '(?!)') : `[${negate ? '^' : ''}${set}]`;
    } else {
      out += escapeLiteral(c);
    }
  }
  return new RegExp(`^(?:${out})$`, 's');
}

/** A list of globs, ORed. */
export class TagGlobs {
  private readonly patterns: RegExp[];

  constructor(readonly globs: readonly string[]) {
    this.patterns = globs.map(globToRegExp);
  }

  matches(tag: string): boolean {
    return this.patterns.some((p) => p.test(tag));
  }

  /** The tags any glob matches, without duplicates, sorted (code-point order, as Python sorts). */
  select(tags: Iterable<string>): string[] {
    const picked = new Set<string>();
    for (const t of tags) if (this.matches(t)) picked.add(t);
    return [...picked].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

function escapeLiteral(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

function escapeClass(c: string): string {
  return /[\\\]^[]/.test(c) ? `\\${c}` : c;
}
