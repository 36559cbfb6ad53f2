/**
 * The log contract of docs/operations.md, checked: standard output is one JSON object per line, and no
 * object (at any depth) has the same key twice — `jq` and most JSON readers keep only the last one, so
 * a duplicated `msg` silently loses the first.
 */

/** The keys that appear twice in one object of the JSON text `text` (assumed syntactically valid). */
export function duplicateKeys(text: string): string[] {
  const stack: Array<Set<string> | null> = [];
  const duplicates: string[] = [];
  const stringToken = /"(?:[^"\\]|\\.)*"/y;
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === '"') {
      stringToken.lastIndex = i;
      const m = stringToken.exec(text);
      if (!m) break;
      let k = i + m[0].length;
      while (k < text.length && /\s/.test(text[k]!)) k++;
      const keys = stack.at(-1);
      if (text[k] === ':' && keys) {
        const key = JSON.parse(m[0]) as string;
        if (keys.has(key)) duplicates.push(key);
        keys.add(key);
      }
      i += m[0].length;
      continue;
    }
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    i++;
  }
  return duplicates;
}

/**
 * What is wrong with `output` as a JSON-lines log: lines that are not one JSON object, objects with a
 * duplicated key. `partialTail`: the text after the last newline may be an unfinished line (a process
 * killed mid-write) and is not checked; otherwise it must be empty.
 */
export function jsonLogProblems(output: string, opts: { partialTail?: boolean } = {}): string[] {
  const lines = output.split('\n');
  const tail = lines.pop() ?? '';
  if (tail !== '' && !opts.partialTail) lines.push(tail);
  const problems: string[] = [];
  for (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      problems.push(`not JSON: ${line.slice(0, 300)}`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`not a JSON object: ${line.slice(0, 300)}`);
      continue;
    }
    const dups = duplicateKeys(line);
    if (dups.length) problems.push(`duplicated key${dups.length > 1 ? 's' : ''} ${dups.map((d) => JSON.stringify(d)).join(', ')}: ${line.slice(0, 300)}`);
  }
  return problems;
}
