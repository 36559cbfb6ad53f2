/**
 * A fault-injecting reverse proxy (node:http on 127.0.0.1) in front of a real upstream registry —
 * Distribution or a Wharf process — for the failures a real server cannot be made to produce on cue.
 *
 * Everything is forwarded verbatim: method, path and query, headers (the client's `Host` too, so the
 * upstream builds its upload and redirect URLs for the proxy), status, headers and body. Only absolute
 * URLs naming the upstream's origin in `Location` and in a `WWW-Authenticate` challenge (`realm=…`) are
 * rewritten to the proxy's origin, so token requests and redirects come back through the proxy.
 *
 * Faults are rules matched per request (method, path regex or predicate; optionally only N times), first
 * match wins:
 *   before the upstream is asked — `status` (any 4xx/5xx with an OCI error body), `rateLimited` (Docker
 *   Hub's 429 with `ratelimit-*` and `Retry-After`), `reset` (TCP RST), `stall` (no headers for a while);
 *   on the upstream's answer — `truncate` (N body bytes, then the connection is dropped), `corrupt` (same
 *   length, flipped bytes: a wrong digest), `throttle` (slow body), `stall` with `afterHeaders`
 *   (headers, then nothing), `rateLimitHeaders` (pass-through plus `ratelimit-*` headers). Body faults
 *   apply only to 2xx answers with a body, so a 401 challenge on the way does not use them up.
 * `setUpstreamDown(true)` resets every connection, like a stopped upstream. Every request is recorded
 * (method, path, query, status sent, fault) so tests can count what reached the upstream.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendError } from './fault-server.js';

/** Docker Hub's rate-limit window, as its headers write it (`100;w=21600`). */
export const DOCKER_HUB_WINDOW_S = 21_600;

export type Fault =
  /** Headers as the upstream sent them (with its Content-Length), `afterBytes` body bytes, then the socket is destroyed. */
  | { kind: 'truncate'; afterBytes: number }
  /** Same length, bytes [at, at+length) XORed with 0xff; `at` defaults to the middle of the body (or 0 without Content-Length). */
  | { kind: 'corrupt'; at?: number; length?: number }
  /**
   * Nothing for `ms` (forever if omitted, until the client or the proxy gives up), then `then`:
   * 'continue' (default) forwards normally, 'destroy' drops the connection. `afterHeaders`: the
   * upstream's headers are sent first and the body stalls.
   */
  | { kind: 'stall'; ms?: number; afterHeaders?: boolean; then?: 'continue' | 'destroy' }
  /** Answers `status` with an OCI error body (`code`, default UNAVAILABLE for 5xx, else UNKNOWN); the upstream is not asked. */
  | { kind: 'status'; status: number; code?: string; message?: string; headers?: Record<string, string> }
  /** Docker Hub's 429: TOOMANYREQUESTS, `ratelimit-limit: <limit>;w=21600`, `ratelimit-remaining: 0;w=21600`, `Retry-After`. */
  | { kind: 'rateLimited'; limit?: number; retryAfterS?: number }
  /** The connection is reset (RST) without an answer. */
  | { kind: 'reset' }
  /** Pass-through, plus `ratelimit-limit`/`ratelimit-remaining: <remaining>;w=21600` and `docker-ratelimit-source`. */
  | { kind: 'rateLimitHeaders'; remaining: number; limit?: number }
  /** Pass-through with the body paced to `bytesPerSecond`. */
  | { kind: 'throttle'; bytesPerSecond: number };

export type FaultKind = Fault['kind'];

export interface FaultRule {
  /** Exact method (GET and HEAD are different); any if omitted. */
  method?: string;
  /** Tested against the path without the query; a string must equal it. Any if omitted. */
  path?: RegExp | string;
  /** Further condition on the request. */
  match?: (req: ProxiedRequest) => boolean;
  /** How many requests the rule affects; unlimited if omitted. */
  times?: number;
  fault: Fault;
}

export interface FaultHandle {
  /** Requests the rule has affected so far. */
  readonly hits: number;
  remove(): void;
}

/** One request the proxy received. */
export interface ProxiedRequest {
  method: string;
  /** Path and query as received, e.g. `/v2/library/app/manifests/1?ns=docker.io`. */
  url: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Status sent to the client once known; 0 when the connection was dropped without an answer. */
  status?: number;
  /** The fault applied to this request, if any. */
  fault?: FaultKind;
  /** Body bytes written to the client. */
  bytesSent: number;
  /** True once the exchange is over (answered in full, or broken off). */
  done: boolean;
  /** Why the exchange broke off (upstream unreachable, client went away…). */
  error?: string;
}

export interface RequestFilter {
  method?: string;
  path?: RegExp | string;
  status?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>, as registry clients write it */
  host: string;
  port: number;
  /** The upstream's base URL. */
  upstream: string;
  /** Every request received, in arrival order. */
  readonly requests: readonly ProxiedRequest[];
  /** Requests matching every given field. */
  requestsMatching(filter?: RequestFilter): ProxiedRequest[];
  count(filter?: RequestFilter): number;
  clearRequests(): void;
  /** Adds a rule after the existing ones. */
  inject(rule: FaultRule): FaultHandle;
  clearFaults(): void;
  /** While down, every connection (open or new) is reset at once, as if nothing listened upstream. */
  setUpstreamDown(down: boolean): void;
  /** Connections reset because the upstream was (or went) down. */
  readonly refusedConnections: number;
  /** Closes the listener, every connection and pending timer. */
  stop(): Promise<void>;
}

export interface StartFaultProxyOptions {
  /** Forward the client's Host header (default true); false sends the upstream's host instead. */
  preserveHost?: boolean;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']);
const REQUEST_FAULTS = new Set<FaultKind>(['status', 'rateLimited', 'reset']);

interface Rule extends FaultRule {
  hits: number;
}

/** Starts a proxy on 127.0.0.1:<free port> forwarding to `upstreamUrl` (http only). */
export async function startFaultProxy(upstreamUrl: string, opts: StartFaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  if (upstream.protocol !== 'http:') throw new Error(`fault proxy: only http upstreams, not ${upstreamUrl}`);
  const upstreamOrigin = upstream.origin;
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  const stopping = new AbortController();
  const requests: ProxiedRequest[] = [];
  let rules: Rule[] = [];
  let down = false;
  let refused = 0;
  let proxyOrigin = '';

  const matches = (rule: Rule, rec: ProxiedRequest): boolean =>
    (rule.times === undefined || rule.hits < rule.times) &&
    (rule.method === undefined || rule.method.toUpperCase() === rec.method) &&
    (rule.path === undefined || (typeof rule.path === 'string' ? rule.path === rec.path : rule.path.test(rec.path))) &&
    (rule.match === undefined || rule.match(rec));

  /** The first applicable rule among those `eligible` for this phase; counts it as a hit. */
  const take = (rec: ProxiedRequest, eligible: (f: Fault) => boolean): Fault | undefined => {
    const rule = rules.find((r) => eligible(r.fault) && matches(r, rec));
    if (!rule) return undefined;
    rule.hits++;
    rec.fault = rule.fault.kind;
    return rule.fault;
  };

  const rewrite = (value: string): string => value.split(upstreamOrigin).join(proxyOrigin);

  async function handle(req: IncomingMessage, res: ServerResponse, rec: ProxiedRequest): Promise<void> {
    // Aborted when the client goes away or the proxy stops: ends stalls and the upstream exchange.
    const gone = new AbortController();
    const onStop = (): void => gone.abort();
    stopping.signal.addEventListener('abort', onStop);
    res.once('close', () => {
      if (!res.writableFinished && !rec.error) rec.error = 'connection closed before the answer was complete';
      rec.done = true;
      gone.abort();
      stopping.signal.removeEventListener('abort', onStop);
    });

    const early = take(rec, (f) => REQUEST_FAULTS.has(f.kind) || (f.kind === 'stall' && !f.afterHeaders));
    if (early?.kind === 'reset') {
      rec.status = 0;
      req.socket.resetAndDestroy();
      return;
    }
    if (early?.kind === 'status') {
      rec.status = early.status;
      sendError(res, early.status, early.code ?? (early.status >= 500 ? 'UNAVAILABLE' : 'UNKNOWN'), early.message ?? `injected ${early.status}`, early.headers);
      return;
    }
    if (early?.kind === 'rateLimited') {
      rec.status = 429;
      const limit = early.limit ?? 100;
      sendError(res, 429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit. (injected by the fault proxy)', {
        'ratelimit-limit': `${limit};w=${DOCKER_HUB_WINDOW_S}`,
        'ratelimit-remaining': `0;w=${DOCKER_HUB_WINDOW_S}`,
        'docker-ratelimit-source': '127.0.0.1',
        'retry-after': String(early.retryAfterS ?? 60),
      });
      return;
    }
    if (early?.kind === 'stall') {
      if (!(await pause(early.ms, gone.signal))) return;
      if (early.then === 'destroy') return drop(req, res, rec, 'stalled, then dropped');
    }

    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    if (opts.preserveHost === false) headers.host = upstream.host;
    const upReq = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent, signal: gone.signal });
    const upRes = await new Promise<IncomingMessage | Error>((resolve) => {
      upReq.once('response', resolve);
      upReq.once('error', resolve);
      req.pipe(upReq);
    });
    if (upRes instanceof Error) {
      if (!gone.signal.aborted) drop(req, res, rec, `upstream: ${upRes.message}`);
      return;
    }

    const status = upRes.statusCode ?? 502;
    const hasBody = rec.method !== 'HEAD' && status >= 200 && status < 300 && status !== 204;
    const late = take(rec, (f) =>
      f.kind === 'rateLimitHeaders' || (hasBody && (f.kind === 'truncate' || f.kind === 'corrupt' || f.kind === 'throttle' || (f.kind === 'stall' && f.afterHeaders === true))),
    );
    const out: string[] = [];
    const raw = upRes.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) continue;
      out.push(name, lower === 'location' || lower === 'www-authenticate' ? rewrite(raw[i + 1]!) : raw[i + 1]!);
    }
    if (late?.kind === 'rateLimitHeaders') {
      out.push('ratelimit-limit', `${late.limit ?? 100};w=${DOCKER_HUB_WINDOW_S}`);
      out.push('ratelimit-remaining', `${late.remaining};w=${DOCKER_HUB_WINDOW_S}`);
      out.push('docker-ratelimit-source', '127.0.0.1');
    }
    rec.status = status;
    res.writeHead(status, upRes.statusMessage, out);

    if (late?.kind === 'stall') {
      res.flushHeaders();
      if (!(await pause(late.ms, gone.signal))) return;
      if (late.then === 'destroy') return drop(req, res, rec, 'stalled after headers, then dropped', true);
    }
    const contentLength = Number(upRes.headers['content-length'] ?? NaN);
    const corruptAt = late?.kind === 'corrupt' ? (late.at ?? (Number.isFinite(contentLength) ? Math.floor(contentLength / 2) : 0)) : -1;
    const corruptEnd = late?.kind === 'corrupt' ? corruptAt + (late.length ?? 1) : -1;
    const started = Date.now();
    try {
      for await (const data of upRes) {
        let chunk = data as Buffer;
        const offset = rec.bytesSent;
        if (late?.kind === 'corrupt' && offset < corruptEnd && offset + chunk.length > corruptAt) {
          chunk = Buffer.from(chunk);
          for (let i = Math.max(corruptAt - offset, 0); i < Math.min(corruptEnd - offset, chunk.length); i++) chunk[i] = chunk[i]! ^ 0xff;
        }
        if (late?.kind === 'truncate' && offset + chunk.length >= late.afterBytes) {
          await write(res, chunk.subarray(0, late.afterBytes - offset), rec);
          upRes.destroy();
          return drop(req, res, rec, `truncated after ${late.afterBytes} bytes`, true);
        }
        await write(res, chunk, rec);
        if (late?.kind === 'throttle') {
          const due = started + (rec.bytesSent / late.bytesPerSecond) * 1000;
          if (!(await pause(Math.max(0, due - Date.now()), gone.signal))) return;
        }
        if (gone.signal.aborted) return;
      }
      res.end();
    } catch (err) {
      if (!gone.signal.aborted) drop(req, res, rec, `relaying the body: ${(err as Error).message}`, true);
    }
  }

  /** Writes and waits until the bytes are handed to the kernel (so a destroy right after cannot lose them). */
  function write(res: ServerResponse, chunk: Buffer, rec: ProxiedRequest): Promise<void> {
    if (chunk.length === 0) {
      res.flushHeaders();
      return sleep(20);
    }
    rec.bytesSent += chunk.length;
    return new Promise((resolve) => res.write(chunk, () => resolve()));
  }

  function drop(req: IncomingMessage, res: ServerResponse, rec: ProxiedRequest, why: string, answered = false): void {
    if (!answered) rec.status = 0;
    rec.error = why;
    res.destroy();
    req.socket.destroy();
  }

  /** Waits `ms` (forever if undefined); false if the exchange was aborted meanwhile. */
  async function pause(ms: number | undefined, signal: AbortSignal): Promise<boolean> {
    try {
      if (ms === undefined) await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
      else await sleep(ms, undefined, { signal });
      return true;
    } catch {
      return false;
    }
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const parsed = new URL(url, 'http://proxy.invalid');
    const rec: ProxiedRequest = {
      method: req.method ?? 'GET',
      url,
      path: parsed.pathname,
      query: parsed.searchParams,
      headers: req.headers,
      bytesSent: 0,
      done: false,
    };
    requests.push(rec);
    handle(req, res, rec).catch((err: unknown) => {
      rec.error = `fault proxy: ${String(err)}`;
      if (!res.headersSent) sendError(res, 599, 'UNKNOWN', rec.error);
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    if (down) {
      refused++;
      s.resetAndDestroy();
      return;
    }
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxyOrigin = `http://127.0.0.1:${port}`;

  const select = (f: RequestFilter = {}): ProxiedRequest[] =>
    requests.filter(
      (r) =>
        (f.method === undefined || f.method.toUpperCase() === r.method) &&
        (f.path === undefined || (typeof f.path === 'string' ? f.path === r.path : f.path.test(r.path))) &&
        (f.status === undefined || f.status === r.status),
    );

  return {
    url: proxyOrigin,
    host: `127.0.0.1:${port}`,
    port,
    upstream: upstreamOrigin,
    requests,
    requestsMatching: select,
    count: (f) => select(f).length,
    clearRequests: () => void requests.splice(0),
    inject(rule) {
      const r: Rule = { ...rule, hits: 0 };
      rules.push(r);
      return {
        get hits() {
          return r.hits;
        },
        remove: () => void (rules = rules.filter((x) => x !== r)),
      };
    },
    clearFaults: () => void (rules = []),
    setUpstreamDown(value) {
      down = value;
      if (!down) return;
      for (const s of sockets) {
        refused++;
        s.resetAndDestroy();
      }
    },
    get refusedConnections() {
      return refused;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        stopping.abort();
        for (const s of sockets) s.destroy();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
