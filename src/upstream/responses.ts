/** Parsing of upstream response details: pagination links, rate-limit headers, referrers indexes. */
import { parseDigest, type Digest } from '../oci/digest.js';
import { UpstreamProtocolError } from './errors.js';
import type { Headers } from './transport.js';

/** `last` and `n` of a `Link: </v2/…/tags/list?n=100&last=x>; rel="next"` header. */
export function parseLinkNext(link: string | undefined): { last: string; n?: number } | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/\brel="?next"?/i.test(m[2]!)) continue;
    const url = new URL(m[1]!, 'http://upstream.invalid');
    const last = url.searchParams.get('last');
    if (last === null) return undefined;
    const n = url.searchParams.get('n');
    return n !== null && /^\d+$/.test(n) ? { last, n: Number(n) } : { last };
  }
  return undefined;
}

export interface RateLimitState {
  limit: number;
  remaining: number;
  /** Window in seconds (`;w=21600`), if given. */
  windowSeconds: number | undefined;
  /** When these headers were seen (epoch ms). */
  observedAt: number;
}

/** Docker Hub's `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`. */
export function parseRateLimit(headers: Headers, now: number): RateLimitState | undefined {
  const one = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const limit = /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(one('ratelimit-limit') ?? '');
  const remaining = /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(one('ratelimit-remaining') ?? '');
  if (!limit || !remaining) return undefined;
  const w = remaining[2] ?? limit[2];
  return { limit: Number(limit[1]), remaining: Number(remaining[1]), windowSeconds: w ? Number(w) : undefined, observedAt: now };
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ReferrersResult {
  manifests: ReferrerDescriptor[];
  /** `api`: the upstream's referrers API; `tag-schema`: the `sha256-<hex>` fallback tag. */
  source: 'api' | 'tag-schema';
}

/** The descriptors of a referrers index, filtered by `artifactType` when given. */
export function parseReferrers(bytes: Buffer, source: ReferrersResult['source'], artifactType?: string): ReferrersResult {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UpstreamProtocolError('referrers index is not valid JSON');
  }
  const list = (doc as { manifests?: unknown })?.manifests;
  if (!Array.isArray(list)) throw new UpstreamProtocolError('referrers index has no "manifests" array');
  const manifests: ReferrerDescriptor[] = [];
  for (const entry of list as Array<Record<string, unknown>>) {
    const d = typeof entry?.digest === 'string' ? parseDigest(entry.digest) : undefined;
    if (!d?.ok || typeof entry.mediaType !== 'string' || typeof entry.size !== 'number') {
      throw new UpstreamProtocolError('referrers index holds an invalid descriptor');
    }
    const r: ReferrerDescriptor = { mediaType: entry.mediaType, digest: d.digest, size: entry.size };
    if (typeof entry.artifactType === 'string') r.artifactType = entry.artifactType;
    if (entry.annotations && typeof entry.annotations === 'object') r.annotations = entry.annotations as Record<string, string>;
    if (artifactType === undefined || r.artifactType === artifactType) manifests.push(r);
  }
  return { manifests, source };
}
