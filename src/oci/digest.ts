/**
 * Content digests: `algorithm ":" encoded`, as in the OCI image spec (descriptor.md).
 *
 *   digest    ::= algorithm ":" encoded
 *   algorithm ::= "sha256" | "sha512"          (registered algorithms Wharf verifies)
 *   encoded   ::= lowercase hex, 64 chars for sha256, 128 for sha512
 */
import { createHash, type Hash } from 'node:crypto';

declare const digestBrand: unique symbol;
/** A syntactically valid digest with a supported algorithm. */
export type Digest = string & { readonly [digestBrand]: true };

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export type DigestParse = { ok: true; digest: Digest } | { ok: false; reason: string };

/** Parses a digest string; the reason explains a failure in words a client can act on. */
export function parseDigest(value: string): DigestParse {
  const m = DIGEST_RE.exec(value);
  if (!m) return { ok: false, reason: `"${truncate(value)}" is not a digest (expected algorithm:hex)` };
  const algorithm = m[1]!;
  const encoded = m[2]!;
  if (!(algorithm in HEX_LENGTH)) return { ok: false, reason: `unsupported digest algorithm "${algorithm}" (sha256 and sha512 are supported)` };
  const len = HEX_LENGTH[algorithm as DigestAlgorithm];
  if (encoded.length !== len || !/^[a-f0-9]+$/.test(encoded)) {
    return { ok: false, reason: `${algorithm} digest must be ${len} lowercase hex characters` };
  }
  return { ok: true, digest: value as Digest };
}

export function isDigest(value: string): value is Digest {
  return parseDigest(value).ok;
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** An incremental digester; `digest()` may be called once. */
export class Digester {
  private readonly hash: Hash;
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
