/**
 * Routing for `/v2/<name>/...`. Repository names contain slashes, so one wildcard route receives every
 * `/v2` request and `matchV2Path` splits the path; the operation suffix is matched from the right.
 *
 *   <name>/manifests/<reference>
 *   <name>/blobs/uploads/            <name>/blobs/uploads/<id>
 *   <name>/blobs/<digest>
 *   <name>/tags/list
 *   <name>/referrers/<digest>
 *   _catalog
 */
export type V2Path =
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => V2Path]> = [
  [/^(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/** Matches the part of the path after `/v2/`; undefined for paths that name no operation. */
export function matchV2Path(rest: string): V2Path | undefined {
  if (rest === '_catalog') return { kind: 'catalog' };
  for (const [re, make] of PATTERNS) {
    const m = re.exec(rest);
    if (m) return make(m);
  }
  return undefined;
}
