/**
 * What a caller of the upstream import (a proxy-cache client, a mirror tag) sees when the upstream fails and nothing local may be used. Never a
 * 500: the upstream's 404 stays a 404 (with its reason), a rate limit a 429 with Retry-After, and every
 * other failure (down, timing out, corrupt, refused by the SSRF guard, access revoked) a clear 503 or 404.
 */
import { RegistryError } from '../../oci/errors.js';
import { isUpstreamError, UpstreamRateLimitedError } from '../../upstream/errors.js';

export function upstreamFailure(err: unknown, what: 'manifest' | 'blob' | 'tags', upstream: string): Error {
  if (!isUpstreamError(err)) return err as Error;
  const unknown = what === 'blob' ? 'BLOB_UNKNOWN' : what === 'tags' ? 'NAME_UNKNOWN' : 'MANIFEST_UNKNOWN';
  switch (err.kind) {
    case 'not_found':
      return new RegistryError(unknown, `not found in the upstream registry ${upstream}: ${err.message}`, undefined, 404);
    case 'auth':
      // Access was refused after one re-authentication: credentials wrong or revoked. Not served from cache.
      return new RegistryError(unknown, `the upstream registry ${upstream} refused access (check the organization's upstream credentials): ${err.message}`, undefined, 404);
    case 'rate_limited': {
      const retry = err instanceof UpstreamRateLimitedError ? err.retryAfterSeconds : undefined;
      const e = new RegistryError('TOOMANYREQUESTS', `the upstream registry ${upstream} is rate limiting pulls and this content is not cached: ${err.message}`, undefined, 429);
      return retry !== undefined ? e.withHeaders({ 'Retry-After': String(Math.max(1, Math.ceil(retry))) }) : e;
    }
    case 'blocked':
      // The stored upstream passed when it was configured; this server's address policy refuses it now.
      return new RegistryError('UNAVAILABLE', `this registry refuses to connect to the upstream registry ${upstream} and this content is not cached: ${err.message}`, undefined, 503);
    default:
      return new RegistryError('UNAVAILABLE', `the upstream registry ${upstream} is unavailable and this content is not cached: ${err.message}`, undefined, 503);
  }
}
