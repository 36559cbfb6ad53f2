/** Edge parsing for `/v2`: raw strings from the request become branded types or a precise 4xx. */
import { parseDigest, type Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { parseReference, parseRepositoryName, type Reference, type RepositoryName } from '../../oci/reference.js';
import type { ChunkRange } from '../../registry/uploads.js';
import { matchV2Path } from './paths.js';

export function repositoryName(raw: string, defaultNamespace: string): RepositoryName {
  const r = parseRepositoryName(raw, defaultNamespace);
  if (!r.ok) throw new RegistryError('NAME_INVALID', r.reason);
  return r.name;
}

/**
 * A manifest reference. An invalid digest is a 400; an invalid tag is a 400 on push but, on a read,
 * names a manifest that cannot exist (404 MANIFEST_UNKNOWN), as the conformance suite expects.
 */
export function reference(raw: string, mode: 'read' | 'write'): Reference {
  const r = parseReference(raw);
  if (r.ok) return r.reference;
  if (raw.includes(':')) throw new RegistryError('DIGEST_INVALID', r.reason);
  if (mode === 'read') throw new RegistryError('MANIFEST_UNKNOWN', r.reason);
  throw new RegistryError('TAG_INVALID', r.reason);
}

export function digest(raw: string | undefined, what = 'digest'): Digest {
  if (raw === undefined || raw === '') throw new RegistryError('DIGEST_INVALID', `${what} is required`);
  const d = parseDigest(raw);
  if (!d.ok) throw new RegistryError('DIGEST_INVALID', `${what}: ${d.reason}`);
  return d.digest;
}

/** `n` of a list request: a whole number, capped at `max`. */
export function pageSize(raw: string | undefined, max: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new RegistryError('UNSUPPORTED', `n must be a non-negative integer, got "${raw.slice(0, 20)}"`, undefined, 400);
  return Math.min(Number(raw), max);
}

/** A chunk's `Content-Range: <start>-<end>` (also `bytes <start>-<end>/<total>`). */
export function contentRange(raw: string | undefined): ChunkRange | undefined {
  if (raw === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(raw.trim());
  if (!m) throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range "${raw.slice(0, 60)}" is not of the form <start>-<end>`, undefined, 416);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range end ${end} is before start ${start}`, undefined, 416);
  return { start, end };
}

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/** A blob GET's `Range: bytes=...` against a blob of `size` bytes; multi-range requests get the whole blob. */
export function byteRange(raw: string | undefined, size: number): ByteRange {
  if (raw === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(raw.trim());
  if (!m || (m[1] === '' && m[2] === '')) return raw.includes(',') ? undefined : 'unsatisfiable';
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * The error for a `/v2/` path that is not valid percent-encoding (a `%` without two hex digits, or
 * bytes that are not UTF-8), naming the part that cannot be read (the repository name, the reference,
 * the digest or the upload); always a 400. `rest` is the raw path after `/v2/`.
 */
export function undecodablePath(rest: string): RegistryError {
  const path = matchV2Path(rest);
  const shown = (part: string) => `"${part.slice(0, 100)}" is not valid percent-encoding`;
  if (path && path.kind !== 'catalog') {
    if (!decodes(path.name)) return new RegistryError('NAME_INVALID', `repository name ${shown(path.name)}`);
    if (path.kind === 'manifest') return new RegistryError(path.reference.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', `reference ${shown(path.reference)}`);
    if (path.kind === 'blob' || path.kind === 'referrers') return new RegistryError('DIGEST_INVALID', `digest ${shown(path.digest)}`);
    if (path.kind === 'upload') return new RegistryError('BLOB_UPLOAD_INVALID', `upload id ${shown(path.id)}`);
  }
  return new RegistryError('UNSUPPORTED', `path ${shown(`/v2/${rest}`)}`, undefined, 400);
}

function decodes(part: string): boolean {
  try {
    decodeURIComponent(part);
    return true;
  } catch {
    return false;
  }
}
