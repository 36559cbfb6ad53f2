/**
 * An OCI distribution client for one upstream registry. Repository arguments are upstream paths (map a
 * client's path with `upstreamRepository` first). Every call goes through the host's circuit breaker
 * and, for GETs, a rate-limit back-off; every failure is one of the typed errors in errors.ts. A call
 * takes one permit of the breaker for all the requests it makes (a token from the registry's token
 * realm, the 401 retry, a HEAD's fallback GET) and reports one outcome when its answer is known (for a
 * blob, its response headers); a caller says with `fallback` whether it could do without the answer.
 *
 * Guarantees: a manifest is returned only if its bytes hash to the upstream's Docker-Content-Digest and,
 * by digest, to the requested digest; a full blob stream ends successfully only if its bytes hash to the
 * requested digest and match Content-Length (the last chunk is held back until then).
 */
import { PassThrough, type Readable } from 'node:stream';
import { digestAlgorithm, digestOf, parseDigest, type Digest } from '../oci/digest.js';
import { MediaType, isManifestMediaType, normalizeMediaType } from '../oci/media-types.js';
import { parseReference, parseRepositoryName } from '../oci/reference.js';
import { Authenticator, type Credentials } from './authenticator.js';
import { CircuitBreaker, type AcquireOptions, type CircuitPermit } from './circuit-breaker.js';
import {
  UpstreamAuthError,
  UpstreamBlockedError,
  UpstreamNotFoundError,
  UpstreamProtocolError,
  UpstreamRateLimitedError,
  UpstreamUnavailableError,
  isUpstreamError,
} from './errors.js';
import { UpstreamSpecError, type SsrfGuard, type UpstreamSpec } from './ssrf.js';
import { DEFAULT_TIMEOUTS, Transport, header, statusError, toUpstreamError, type Timeouts, type UpstreamResponse } from './transport.js';
import { VerifyingStream } from './verifying-stream.js';
import { parseLinkNext, parseRateLimit, parseReferrers, type RateLimitState, type ReferrersResult } from './responses.js';

export type { Credentials } from './authenticator.js';
export type { RateLimitState, ReferrersResult } from './responses.js';

/** How long GETs pause after a 429 without Retry-After, or when the rate-limit headers say nothing is left. */
const RATE_LIMIT_BACKOFF_S = 60;

export const DEFAULT_MANIFEST_ACCEPT: readonly string[] = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList];

export interface UpstreamClientOptions {
  spec: UpstreamSpec;
  guard: SsrfGuard;
  credentials?: Credentials;
  /** The breaker of this upstream's host (share one per host); default a private one. */
  breaker?: CircuitBreaker;
  timeouts?: Partial<Timeouts>;
  /** Largest manifest accepted; default 4 MiB. */
  maxManifestBytes?: number;
  /** Margin before a token's expiry; default 10 s. */
  tokenMarginMs?: number;
  /** Retries of a request whose connection broke before any response; default 1. */
  retries?: number;
  /** False accepts any TLS certificate of the upstream (default true). */
  verifyTls?: boolean;
  /** An HTTP proxy to reach the upstream through (transport.ts). */
  proxyUrl?: string;
  now?: () => number;
}

/**
 * Per call: `fallback` when the caller has something to answer with if the upstream cannot (a cached
 * copy it may serve). An open circuit then fails the call at once for the whole cool-down; without a
 * fallback (the default) the call may be the breaker's probe, so that it succeeds soon after the
 * upstream is back (circuit-breaker.ts).
 */
export type CallOptions = AcquireOptions;

export interface ManifestCallOptions extends CallOptions {
  /** Media types asked for; default DEFAULT_MANIFEST_ACCEPT. */
  accept?: readonly string[];
}

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface ManifestResult {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

export interface ByteRange {
  start: number;
  /** Inclusive; open-ended when absent. */
  end?: number;
}

export interface BlobResult {
  /** The body; errors with an UpstreamError if the transfer breaks off or (full body) fails verification. */
  stream: Readable;
  /** Content-Length of this response, if the upstream sent one. */
  size: number | undefined;
  /** 200 for a full body, 206 for a range. */
  status: number;
  /** Parsed Content-Range of a 206. */
  contentRange?: { start: number; end: number; total: number | undefined };
}

export interface TagPage {
  name: string;
  tags: string[];
  /** Where the next page starts, from the upstream's `Link: <…>; rel="next"`. */
  next?: { last: string; n?: number };
}

export class UpstreamClient {
  readonly spec: UpstreamSpec;
  readonly breaker: CircuitBreaker;
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private readonly maxManifestBytes: number;
  private readonly now: () => number;
  private rateLimitedUntil = 0;
  /** The last rate-limit headers seen (Docker Hub's `ratelimit-limit`/`ratelimit-remaining`). */
  rateLimit: RateLimitState | undefined;

  constructor(opts: UpstreamClientOptions) {
    this.spec = opts.spec;
    this.now = opts.now ?? Date.now;
    this.breaker = opts.breaker ?? new CircuitBreaker(opts.spec.host);
    this.transport = new Transport(opts.guard, { ...DEFAULT_TIMEOUTS, ...opts.timeouts }, { retries: opts.retries, verifyTls: opts.verifyTls, proxyUrl: opts.proxyUrl });
    this.auth = new Authenticator(this.transport, opts.spec.baseUrl, { credentials: opts.credentials, tokenMarginMs: opts.tokenMarginMs, now: this.now });
    this.maxManifestBytes = opts.maxManifestBytes ?? 4 * 1024 * 1024;
  }

  /** Token requests sent so far. */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  /**
   * Checks the upstream and the configured credentials (`GET /v2/`): `valid` when access is granted
   * (with credentials, or none needed), `anonymous` when the registry wants auth and none is configured.
   */
  async checkAccess(): Promise<'valid' | 'anonymous'> {
    return this.operation('GET', {}, async () => {
      const res = await this.transport.send('GET', `${this.spec.baseUrl}/v2/`, {});
      if (res.status === 401 && !this.auth.hasCredentials) {
        await res.body.dump().catch(() => undefined);
        return 'anonymous' as const;
      }
      if (res.status === 401) {
        const auth = await this.auth.reauthenticate(res.headers['www-authenticate'], undefined);
        await res.body.dump().catch(() => undefined);
        const again = await this.transport.send('GET', `${this.spec.baseUrl}/v2/`, { authorization: auth });
        if (again.status !== 200) throw await statusError(again, 'the registry');
        await again.body.dump().catch(() => undefined);
        return 'valid' as const;
      }
      if (res.status !== 200) throw await statusError(res, 'the registry');
      await res.body.dump().catch(() => undefined);
      return 'valid' as const;
    });
  }

  /** Digest, media type and size of a manifest, from a HEAD (a GET when the upstream omits them). */
  async headManifest(repo: string, ref: string, opts: ManifestCallOptions = {}): Promise<ManifestHead> {
    const reference = checkReference(repo, ref);
    const accept = opts.accept ?? DEFAULT_MANIFEST_ACCEPT;
    return this.operation('HEAD', opts, async () => {
      const res = await this.request('HEAD', repo, `manifests/${ref}`, { accept: accept.join(', ') }, `manifest ${repo}:${ref}`);
      await res.body.dump().catch(() => undefined);
      const digestHeader = header(res.headers, 'docker-content-digest');
      const parsed = digestHeader ? parseDigest(digestHeader) : undefined;
      if (parsed && !parsed.ok) throw new UpstreamProtocolError(`upstream sent an invalid Docker-Content-Digest "${digestHeader}"`);
      const contentType = header(res.headers, 'content-type');
      const length = Number(header(res.headers, 'content-length'));
      const digest = parsed?.digest ?? (reference.kind === 'digest' ? reference.digest : undefined);
      if (reference.kind === 'digest' && digest !== reference.digest) {
        throw new UpstreamProtocolError(`upstream answered HEAD ${reference.digest} with digest ${digest}`);
      }
      if (!digest || !contentType || !Number.isSafeInteger(length)) {
        const m = await this.fetchManifest(repo, ref, accept);
        return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
      }
      return { digest, mediaType: normalizeMediaType(contentType), size: length };
    });
  }

  /** The manifest bytes exactly as the upstream sent them, verified against every digest on offer. */
  async getManifest(repo: string, ref: string, opts: ManifestCallOptions = {}): Promise<ManifestResult> {
    checkReference(repo, ref);
    return this.operation('GET', opts, () => this.fetchManifest(repo, ref, opts.accept ?? DEFAULT_MANIFEST_ACCEPT));
  }

  /**
   * A blob body as a stream, following redirects (S3, CDNs) without sending Authorization to another
   * origin. Without `range` the stream is verified against `digest` and Content-Length, unless
   * `verify` is false: for a caller that verifies the bytes itself (a proxy fill stores them through
   * the verified write path and holds back their end until it passes), hashing them here too would
   * only cost a second pass over every byte.
   */
  async getBlob(repo: string, digest: string, range?: ByteRange, opts: CallOptions & { verify?: boolean } = {}): Promise<BlobResult> {
    checkRepository(repo);
    const d = parseDigest(digest);
    if (!d.ok) throw new UpstreamSpecError(d.reason);
    return this.operation('GET', opts, async () => {
      const headers: Record<string, string> = { 'accept-encoding': 'identity' };
      if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
      const res = await this.request('GET', repo, `blobs/${digest}`, headers, `blob ${digest}`, true);
      const lengthHeader = header(res.headers, 'content-length');
      const size = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
      let contentRange: BlobResult['contentRange'];
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
        if (!m) {
          res.body.destroy();
          throw new UpstreamProtocolError(`upstream sent 206 for blob ${digest} without a valid Content-Range`);
        }
        contentRange = { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
      } else if (res.status !== 200) {
        res.body.destroy();
        throw new UpstreamProtocolError(`upstream answered ${res.status} for blob ${digest}`, { status: res.status });
      }
      const out = res.status === 200 && opts.verify !== false ? new VerifyingStream(d.digest, size) : new PassThrough();
      this.pipeBody(res, out);
      return { stream: out, size, status: res.status, ...(contentRange ? { contentRange } : {}) };
    });
  }

  /** One page of the upstream's tag list. */
  async listTags(repo: string, page: { n?: number; last?: string } = {}, opts: CallOptions = {}): Promise<TagPage> {
    checkRepository(repo);
    return this.operation('GET', opts, async () => {
      const q = new URLSearchParams();
      if (page.n !== undefined) q.set('n', String(page.n));
      if (page.last !== undefined) q.set('last', page.last);
      const qs = q.size ? `?${q.toString()}` : '';
      const res = await this.request('GET', repo, `tags/list${qs}`, { accept: 'application/json' }, `tags of ${repo}`);
      const doc = parseJson(await this.transport.read(res, 16 * 1024 * 1024, 'tag list'), 'tag list') as { name?: unknown; tags?: unknown };
      const tags = doc.tags === null || doc.tags === undefined ? [] : doc.tags;
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new UpstreamProtocolError('tag list "tags" is not an array of strings');
      const next = parseLinkNext(header(res.headers, 'link'));
      return { name: typeof doc.name === 'string' ? doc.name : repo, tags, ...(next ? { next } : {}) };
    });
  }

  /**
   * Manifests that refer to `digest` (OCI referrers API); when the upstream has no referrers API (404),
   * the referrers tag schema (`sha256-<hex>`), and an empty list when that tag does not exist either.
   */
  async referrers(repo: string, digest: string, opts: CallOptions & { artifactType?: string } = {}): Promise<ReferrersResult> {
    checkRepository(repo);
    const d = parseDigest(digest);
    if (!d.ok) throw new UpstreamSpecError(d.reason);
    return this.operation('GET', opts, async () => {
      const qs = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : '';
      try {
        const res = await this.request('GET', repo, `referrers/${digest}${qs}`, { accept: MediaType.OciIndex }, `referrers of ${digest}`);
        const bytes = await this.transport.read(res, this.maxManifestBytes, 'referrers index');
        const filtered = (header(res.headers, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim()).includes('artifactType');
        return parseReferrers(bytes, 'api', filtered ? undefined : opts.artifactType);
      } catch (err) {
        if (!(err instanceof UpstreamNotFoundError)) throw err;
      }
      const tag = `${digestAlgorithm(d.digest)}-${d.digest.slice(d.digest.indexOf(':') + 1)}`;
      try {
        const m = await this.fetchManifest(repo, tag, [MediaType.OciIndex]);
        return parseReferrers(m.bytes, 'tag-schema', opts.artifactType);
      } catch (err) {
        if (err instanceof UpstreamNotFoundError) return { manifests: [], source: 'tag-schema' as const };
        throw err;
      }
    });
  }

  /** Closes idle connections; in-flight bodies are destroyed. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  private async fetchManifest(repo: string, ref: string, accept: readonly string[]): Promise<ManifestResult> {
    const reference = checkReference(repo, ref);
    const res = await this.request('GET', repo, `manifests/${ref}`, { accept: accept.join(', ') }, `manifest ${repo}:${ref}`);
    const declared = Number(header(res.headers, 'content-length'));
    if (declared > this.maxManifestBytes) {
      res.body.destroy();
      throw new UpstreamProtocolError(`manifest ${repo}:${ref} is ${declared} bytes, more than the ${this.maxManifestBytes} allowed`);
    }
    const bytes = await this.transport.read(res, this.maxManifestBytes, `manifest ${repo}:${ref}`);
    const digestHeader = header(res.headers, 'docker-content-digest');
    let digest = digestOf(bytes);
    if (digestHeader) {
      const parsed = parseDigest(digestHeader);
      if (!parsed.ok) throw new UpstreamProtocolError(`upstream sent an invalid Docker-Content-Digest "${digestHeader}"`);
      const actual = digestOf(bytes, digestAlgorithm(parsed.digest));
      if (actual !== parsed.digest) {
        throw new UpstreamProtocolError(`manifest digest mismatch: upstream says ${parsed.digest}, content hashes to ${actual}`);
      }
      digest = parsed.digest;
    }
    if (reference.kind === 'digest') {
      const actual = digestOf(bytes, digestAlgorithm(reference.digest));
      if (actual !== reference.digest) throw new UpstreamProtocolError(`manifest digest mismatch: requested ${reference.digest}, content hashes to ${actual}`);
      digest = reference.digest;
    }
    const doc = parseJson(bytes, `manifest ${repo}:${ref}`);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UpstreamProtocolError(`manifest ${repo}:${ref} is not a JSON object`);
    return { bytes, digest, mediaType: manifestMediaType(header(res.headers, 'content-type'), doc as Record<string, unknown>) };
  }

  /**
   * Sends a request for `/v2/<repo>/<path>` with the known authorization, re-authenticates once on a
   * 401, and returns a 2xx response; any other outcome is a typed error.
   */
  private async request(method: 'GET' | 'HEAD', repo: string, path: string, headers: Record<string, string>, what: string, followRedirects = false): Promise<UpstreamResponse> {
    const scope = `repository:${repo}:pull`;
    const url = `${this.spec.baseUrl}/v2/${repo}/${path}`;
    const withAuth = (auth: string | undefined) => (auth ? { ...headers, authorization: auth } : headers);
    let res = await this.transport.send(method, url, withAuth(await this.auth.headerFor(scope)), { followRedirects });
    if (res.status === 401 && new URL(res.url).origin === new URL(url).origin) {
      const challenge = res.headers['www-authenticate'];
      await res.body.dump().catch(() => undefined);
      const auth = await this.auth.reauthenticate(challenge, scope);
      res = await this.transport.send(method, url, withAuth(auth), { followRedirects });
      if (res.status === 401 || res.status === 403) {
        const err = await statusError(res, what);
        throw new UpstreamAuthError(`${err.message} after re-authentication`, { status: res.status });
      }
    }
    this.observeRateLimit(res);
    if (res.status >= 200 && res.status < 300) return res;
    const err = await statusError(res, what);
    if (err instanceof UpstreamRateLimitedError) this.backOff(err.retryAfterSeconds ?? RATE_LIMIT_BACKOFF_S);
    throw err;
  }

  /** Runs `fn` under one permit of the circuit breaker (and, for GET, the rate-limit back-off); both fail fast. */
  private async operation<T>(method: 'GET' | 'HEAD', call: CallOptions, fn: () => Promise<T>): Promise<T> {
    if (method === 'GET' && this.rateLimitedUntil > this.now()) {
      const wait = Math.ceil((this.rateLimitedUntil - this.now()) / 1000);
      throw new UpstreamRateLimitedError(`upstream ${this.spec.registry} rate limit: backing off for ${wait} s`, wait);
    }
    const permit = this.breaker.acquire({ fallback: call.fallback });
    try {
      const result = await fn();
      permit.success();
      return result;
    } catch (err) {
      report(permit, err);
      throw err;
    }
  }

  private pipeBody(res: UpstreamResponse, out: PassThrough | VerifyingStream): void {
    let consumerGone = false;
    res.body.on('error', (err) => {
      const mapped = toUpstreamError(err, this.transport.timeouts, res.url);
      if (!consumerGone && mapped instanceof UpstreamUnavailableError) this.breaker.recordFailure();
      out.destroy(mapped);
    });
    out.on('close', () => {
      if (!res.body.readableEnded) {
        consumerGone = true;
        res.body.destroy();
      }
    });
    res.body.pipe(out);
  }

  private observeRateLimit(res: UpstreamResponse): void {
    const state = parseRateLimit(res.headers, this.now());
    if (!state) return;
    this.rateLimit = state;
    // The window is spent: GETs would only earn 429s (HEADs are free on Docker Hub and still go out).
    // A 429 says itself how long to wait (Retry-After).
    if (state.remaining <= 0 && res.status < 300) this.backOff(Math.min(state.windowSeconds ?? RATE_LIMIT_BACKOFF_S, RATE_LIMIT_BACKOFF_S));
  }

  /** No GETs for `seconds`: they fail at once with UpstreamRateLimitedError (the proxy serves its copy). */
  private backOff(seconds: number): void {
    this.rateLimitedUntil = Math.max(this.rateLimitedUntil, this.now() + seconds * 1000);
  }
}

function report(permit: CircuitPermit, err: unknown): void {
  if (err instanceof UpstreamUnavailableError) permit.failure();
  else if (err instanceof UpstreamBlockedError || !isUpstreamError(err)) permit.release();
  else permit.success();
}

function checkRepository(repo: string): void {
  if (!parseRepositoryName(repo).ok) throw new UpstreamSpecError(`invalid upstream repository "${repo.slice(0, 200)}"`);
}

function checkReference(repo: string, ref: string) {
  checkRepository(repo);
  const r = parseReference(ref);
  if (!r.ok) throw new UpstreamSpecError(r.reason);
  return r.reference;
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new UpstreamProtocolError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The Content-Type when it names a manifest type, else the body's mediaType, else inferred. */
function manifestMediaType(contentType: string | undefined, doc: Record<string, unknown>): string {
  const ct = contentType ? normalizeMediaType(contentType) : '';
  if (isManifestMediaType(ct) || ct === MediaType.DockerSchema1 || ct === MediaType.DockerSchema1Signed) return ct;
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  if (doc.schemaVersion === 1) return MediaType.DockerSchema1;
  return MediaType.OciManifest;
}
