/**
 * Typed failures of an upstream registry. The proxy cache decides per kind what a client sees
 * (serve stale, 404, 429, 503); nothing here knows about HTTP responses to our own clients.
 *
 *   UpstreamError
 *   ├── UpstreamUnavailableError   connection refused/reset, DNS, timeouts, 5xx, truncated body, circuit open
 *   ├── UpstreamRateLimitedError   429 (Retry-After in seconds when the upstream sent one)
 *   ├── UpstreamNotFoundError      404, with the upstream's error code and message
 *   ├── UpstreamAuthError          401/403 after one re-authentication, token endpoint refusals
 *   ├── UpstreamProtocolError      digest mismatch, invalid JSON, oversized manifest, unexpected status
 *   └── UpstreamBlockedError       the SSRF guard refused the address (never dialled)
 */
export type UpstreamErrorKind = 'unavailable' | 'rate_limited' | 'not_found' | 'auth' | 'protocol' | 'blocked';

export abstract class UpstreamError extends Error {
  abstract readonly kind: UpstreamErrorKind;
  /** HTTP status the upstream answered with, when it answered. */
  readonly status?: number;

  constructor(message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

export class UpstreamUnavailableError extends UpstreamError {
  readonly kind = 'unavailable' as const;
}

export class UpstreamRateLimitedError extends UpstreamError {
  readonly kind = 'rate_limited' as const;
  constructor(
    message: string,
    /** Seconds the upstream asked us to wait (Retry-After), if it said. */
    readonly retryAfterSeconds: number | undefined,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, opts);
  }
}

export class UpstreamNotFoundError extends UpstreamError {
  readonly kind = 'not_found' as const;
  constructor(
    message: string,
    /** The upstream's OCI error code (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN...), if it sent one. */
    readonly code: string | undefined,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, opts);
  }
}

export class UpstreamAuthError extends UpstreamError {
  readonly kind = 'auth' as const;
}

export class UpstreamProtocolError extends UpstreamError {
  readonly kind = 'protocol' as const;
}

export class UpstreamBlockedError extends UpstreamError {
  readonly kind = 'blocked' as const;
}

export function isUpstreamError(err: unknown): err is UpstreamError {
  return err instanceof UpstreamError;
}
