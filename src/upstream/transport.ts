/**
 * HTTP to one upstream: an undici Agent whose every connection goes through the SSRF guard, with
 * connect / response-headers / body-idle timeouts, redirects that never carry `Authorization` to another
 * origin, one retry of a request whose reused connection broke before any answer, and the mapping of
 * transport failures and HTTP statuses to the typed errors in errors.ts.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { undici } from './undici.js';
import {
  UpstreamAuthError,
  UpstreamError,
  UpstreamNotFoundError,
  UpstreamProtocolError,
  UpstreamRateLimitedError,
  UpstreamUnavailableError,
} from './errors.js';
import type { SsrfGuard } from './ssrf.js';

export interface Timeouts {
  /** TCP (and TLS) connect; default 5 s. */
  connectMs: number;
  /** From sending the request to the complete response headers; default 10 s. */
  headersMs: number;
  /** Longest pause between two chunks of a body; default 30 s. */
  bodyIdleMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 5_000, headersMs: 10_000, bodyIdleMs: 30_000 };

export type Headers = Record<string, string | string[] | undefined>;

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Readable & { dump(opts?: { limit?: number }): Promise<void> };
  /** The URL that answered (after redirects). */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const RETRYABLE = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export interface TransportOptions {
  retries?: number;
  userAgent?: string;
  /** False accepts any TLS certificate of the upstream. */
  verifyTls?: boolean;
  /**
   * An HTTP proxy (`http://[user:pass@]host:port`) every request goes through (a CONNECT tunnel); the
   * proxy's address is resolved through the guard, the upstream's is the proxy's to resolve.
   */
  proxyUrl?: string;
}

export class Transport {
  private readonly agent: Dispatcher;

  constructor(
    guard: SsrfGuard,
    readonly timeouts: Timeouts = DEFAULT_TIMEOUTS,
    private readonly opts: TransportOptions = {},
  ) {
    const common = { headersTimeout: timeouts.headersMs, bodyTimeout: timeouts.bodyIdleMs, keepAliveTimeout: 4_000 };
    this.agent = opts.proxyUrl
      ? new (undici().ProxyAgent)({
          uri: opts.proxyUrl,
          ...common,
          proxyTls: { timeout: timeouts.connectMs, lookup: guard.lookup, autoSelectFamily: true },
          requestTls: { timeout: timeouts.connectMs, ...(opts.verifyTls === false ? { rejectUnauthorized: false } : {}) },
        })
      : new (undici().Agent)({ connect: guard.connector({ timeout: timeouts.connectMs, rejectUnauthorized: opts.verifyTls !== false }), ...common });
  }

  /**
   * Sends one request and returns the response with its body unread. Follows redirects when asked,
   * dropping `Authorization` once the origin changes. Throws UpstreamUnavailableError /
   * UpstreamBlockedError for failures before a response.
   */
  async send(method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, opts: { followRedirects?: boolean } = {}): Promise<UpstreamResponse> {
    let current = url;
    let hdrs = { 'user-agent': this.opts.userAgent ?? 'wharf', ...headers };
    const origin = new URL(url).origin;
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce(method, current, hdrs);
      const location = res.headers.location;
      if (!opts.followRedirects || !REDIRECTS.has(res.status) || typeof location !== 'string') return res;
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new UpstreamProtocolError(`more than ${MAX_REDIRECTS} redirects from ${url}`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new UpstreamProtocolError(`invalid redirect location "${location.slice(0, 200)}"`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new UpstreamProtocolError(`redirect to a ${next.protocol} URL refused`);
      if (next.origin !== origin) {
        const { authorization: _dropped, ...rest } = hdrs as Record<string, string>;
        hdrs = rest as typeof hdrs;
      }
      current = next.toString();
    }
  }

  private async sendOnce(method: 'GET' | 'HEAD', url: string, headers: Record<string, string>): Promise<UpstreamResponse> {
    const retries = this.opts.retries ?? 1;
    for (let attempt = 0; ; attempt++) {
      try {
        // undici closes a connection after a HEAD unless told otherwise (for servers that send a body
        // with it); registries do not, and Go's clients (containerd, skopeo) keep the connection too: a
        // mirror's re-sync makes one HEAD per tag, which would otherwise each open a connection.
        const res = await undici().request(url, { method, headers, dispatcher: this.agent, ...(method === 'HEAD' && { reset: false }) });
        return { status: res.statusCode, headers: res.headers, body: res.body, url };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (attempt < retries && code !== undefined && RETRYABLE.has(code)) continue;
        throw toUpstreamError(err, this.timeouts, url);
      }
    }
  }

  /**
   * Reads a response body up to `limit` bytes (more is an UpstreamProtocolError). A body that breaks
   * off or stalls is an UpstreamUnavailableError, like a failure before the response.
   */
  async read(res: UpstreamResponse, limit: number, what: string): Promise<Buffer> {
    try {
      return await readLimited(res.body, limit, what);
    } catch (err) {
      throw toUpstreamError(err, this.timeouts, res.url);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** Maps a transport (or body stream) error to a typed upstream error; typed errors pass through. */
export function toUpstreamError(err: unknown, timeouts: Timeouts, url: string): Error {
  if (err instanceof UpstreamError) return err;
  const e = err as NodeJS.ErrnoException;
  const host = safeHost(url);
  switch (e?.code) {
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return e;
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new UpstreamUnavailableError(`connect to ${host} timed out after ${timeouts.connectMs} ms`, { cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamUnavailableError(`${host} sent no response headers within ${timeouts.headersMs} ms`, { cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamUnavailableError(`${host} stalled for ${timeouts.bodyIdleMs} ms in the middle of a body`, { cause: err });
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return new UpstreamUnavailableError(`connection to ${host} broke off: ${e.message}`, { cause: err });
    default:
      if (typeof e?.code === 'string' && e.code.startsWith('HPE_')) {
        return new UpstreamProtocolError(`${host} sent an invalid HTTP response: ${e.message}`, { cause: err });
      }
      return new UpstreamUnavailableError(`cannot reach ${host}: ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`, { cause: err });
  }
}

/** Reads a body up to `limit` bytes; more is an UpstreamProtocolError. */
async function readLimited(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      body.destroy();
      throw new UpstreamProtocolError(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The typed error for a non-2xx status (after authentication): 404 → not found with the upstream's
 * message, 429 → rate limited, 401/403 → auth, 5xx → unavailable, anything else → protocol.
 */
export async function statusError(res: UpstreamResponse, what: string): Promise<UpstreamError> {
  const { code, message } = await errorBody(res);
  const detail = message ? `: ${message}` : '';
  const opts = { status: res.status };
  if (res.status === 404) return new UpstreamNotFoundError(`${what} not found upstream${detail}`, code, opts);
  if (res.status === 429) {
    const retryAfter = parseRetryAfter(header(res.headers, 'retry-after'));
    return new UpstreamRateLimitedError(`upstream rate limit reached for ${what}${detail}`, retryAfter, opts);
  }
  if (res.status === 401 || res.status === 403) return new UpstreamAuthError(`upstream denied access to ${what} (${res.status})${detail}`, opts);
  if (res.status >= 500) return new UpstreamUnavailableError(`upstream answered ${res.status} for ${what}${detail}`, opts);
  return new UpstreamProtocolError(`upstream answered ${res.status} for ${what}${detail}`, opts);
}

/** The first `{errors:[{code,message}]}` entry of an error body, if any; always consumes the body. */
async function errorBody(res: UpstreamResponse): Promise<{ code?: string; message?: string }> {
  let text: string;
  try {
    text = (await readLimited(res.body, 64 * 1024, 'error body')).toString('utf8');
  } catch {
    res.body.destroy();
    return {};
  }
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = doc.errors?.[0];
    return {
      code: typeof first?.code === 'string' ? first.code : undefined,
      message: typeof first?.message === 'string' ? first.message : undefined,
    };
  } catch {
    const t = text.trim().slice(0, 200);
    return t ? { message: t } : {};
  }
}

/** Retry-After as seconds (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'upstream';
  }
}
