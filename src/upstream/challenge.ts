/**
 * `WWW-Authenticate` challenges (RFC 7235) as registries send them:
 *
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"
 *   Basic realm="Registry Realm"
 *
 * A header may carry several challenges; Bearer is preferred over Basic.
 */
export type Challenge =
  | { scheme: 'bearer'; realm: string; service?: string; scope?: string }
  | { scheme: 'basic'; realm?: string };

/** The usable challenge of a header (Bearer first, then Basic), or undefined. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const headers = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const all = headers.flatMap(parseChallenges);
  const bearer = all.find((c) => c.scheme === 'bearer' && typeof c.params.realm === 'string' && c.params.realm);
  if (bearer) {
    const c: Challenge = { scheme: 'bearer', realm: bearer.params.realm! };
    if (bearer.params.service) c.service = bearer.params.service;
    if (bearer.params.scope) c.scope = bearer.params.scope;
    return c;
  }
  const basic = all.find((c) => c.scheme === 'basic');
  if (basic) return basic.params.realm ? { scheme: 'basic', realm: basic.params.realm } : { scheme: 'basic' };
  return undefined;
}

interface RawChallenge {
  scheme: string;
  params: Record<string, string>;
}

/** Tokenises `scheme k=v, k="v", scheme2 ...`; quoted strings may contain commas and `\"`. */
export function parseChallenges(header: string): RawChallenge[] {
  const out: RawChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (re: RegExp) => {
    while (i < n && re.test(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  let current: RawChallenge | undefined;
  while (i < n) {
    skip(/[\s,]/);
    if (i >= n) break;
    const start = i;
    const word = token();
    if (!word) {
      i++;
      continue;
    }
    skip(/[ \t]/);
    if (header[i] === '=' && current) {
      i++;
      skip(/[ \t]/);
      let value: string;
      if (header[i] === '"') {
        i++;
        value = '';
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const from = i;
        while (i < n && !/[\s,]/.test(header[i]!)) i++;
        value = header.slice(from, i);
      }
      current.params[word.toLowerCase()] = value;
    } else {
      i = start + word.length;
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}
