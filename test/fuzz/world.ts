/**
 * The registry a fuzz run talks to: a real app (buildTestApp) listening on a port, with its log lines
 * captured, a few accounts and organizations, one image, and what the run learned along the way
 * (blobs and manifests it pushed, uploads it started) so that later requests reach deeper code.
 *
 * `check` is the oracle every answer goes through: no 5xx; every `/v2` error is the OCI envelope with a
 * code of the error table; every `/api/v1` error is the API's JSON error; no log line at error level and
 * no stack trace in the log.
 */
import type { InjectOptions } from 'fastify';
import { ERROR_CODES } from '../../src/oci/errors.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import type { TestDialect } from '../helpers/databases.js';
import { pushImage } from '../helpers/inject-client.js';
import { captureLog, type LogLine } from '../helpers/log-capture.js';
import type { Answer } from '../helpers/raw-http.js';
import type { BlobRef } from './inputs.js';

export const NAMESPACES = ['fz', 'fy', 'fuzzer', 'nobody', 'library'] as const;
export const BASE_IMAGE = 'fz/base/img';
/** The repository deep `/api/v1` requests work on (tag `v1` on `target.digest`); nothing else deletes it. */
export const API_TARGET = 'fz/api/target';

export interface Sent {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export class FuzzWorld {
  readonly blobs: BlobRef[] = [];
  readonly manifests: BlobRef[] = [];
  readonly uploads: string[] = [];
  readonly digests: string[] = [];
  /** The manifest tagged `v1` in API_TARGET. */
  target = '';
  port = 0;

  private constructor(
    readonly t: TestApp,
    readonly auth: { root: string; user: string },
    /** Every log line the app wrote, parsed. */
    readonly logs: LogLine[],
  ) {}

  static async start(dialect: TestDialect): Promise<FuzzWorld> {
    const log = captureLog('info');
    const t = await buildTestApp(dialect, {
      logger: log.logger,
      // Made-up credentials must not lock the run's own accounts out of the registry for a minute.
      config: { 'auth.login_failures_per_minute': 1_000_000 },
    });
    const a = t.accounts!;
    await a.accounts.createUser({ name: 'root', password: 'root-password-1', superuser: true });
    await a.accounts.createUser({ name: 'fuzzer', password: 'fuzzer-password-1', superuser: false });
    // The one the API requests may disable, rename or delete (never the two the run signs in as).
    await a.accounts.createUser({ name: 'victim', password: 'victim-password-1', superuser: false });
    for (const org of ['fz', 'fy']) await a.accounts.createOrganization({ name: org, creator: 'root' });
    await a.robots.create('fz', 'bot');
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    const world = new FuzzWorld(t, { root: basic('root', 'root-password-1'), user: basic('fuzzer', 'fuzzer-password-1') }, log.lines);
    const pushed = await pushImage(world.asRoot(), BASE_IMAGE, 'v1', 'fuzz-base');
    world.manifests.push({ digest: pushed.digest, size: pushed.body.length });
    world.digests.push(pushed.digest, pushed.configDigest, pushed.layerDigest);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    world.port = (t.app.server.address() as { port: number }).port;
    return world;
  }

  /** The app with the superuser's credentials added to every inject (for helpers that send none). */
  asRoot(): TestApp['app'] {
    const app = this.t.app;
    const authorization = this.auth.root;
    return new Proxy(app, {
      get(target, prop, receiver) {
        if (prop !== 'inject') return Reflect.get(target, prop, receiver);
        return (opts: InjectOptions) => target.inject({ ...opts, headers: { ...opts.headers, authorization } });
      },
    });
  }

  /** Pushes a fresh image to API_TARGET (the /v2 requests before may have deleted anything else). */
  async prepareApiTarget(): Promise<void> {
    this.target = (await pushImage(this.asRoot(), API_TARGET, 'v1', 'api-target')).digest;
  }

  async close(): Promise<void> {
    await this.t.close();
  }

  /** Sends through `inject` (no socket: Node's HTTP parser is not involved). */
  async inject(sent: Sent): Promise<Answer> {
    const res = await this.t.app.inject({ method: sent.method as 'GET', url: sent.url, headers: sent.headers, payload: sent.body });
    return { status: res.statusCode, headers: res.headers as Answer['headers'], body: res.rawPayload };
  }

  /** Learns blobs, manifests and uploads from successful answers. */
  learn(sent: Sent, answer: Answer): void {
    const location = answer.headers.location;
    const digest = answer.headers['docker-content-digest'];
    if (answer.status === 202 && typeof location === 'string' && location.includes('/blobs/uploads/') && this.uploads.length < 200) this.uploads.push(location);
    if (answer.status === 201 && typeof digest === 'string' && this.digests.length < 500) {
      this.digests.push(digest);
      const size = sent.body === undefined ? 0 : Buffer.byteLength(sent.body);
      if (sent.url.includes('/manifests/')) this.manifests.push({ digest, size });
      else this.blobs.push({ digest, size });
    }
  }

  /** What is wrong with this answer to `sent` (nothing: an empty list). */
  check(sent: Sent, answer: Answer | undefined): string[] {
    const problems: string[] = [];
    if (answer === undefined) return problems;
    if (answer.status >= 500) problems.push(`status ${answer.status}`);
    const path = sent.url.split('?')[0]!;
    if (answer.status >= 400 && sent.method !== 'HEAD') {
      if (path === '/v2' || path.startsWith('/v2/')) problems.push(...ociShape(answer));
      else if (path === '/api/v1' || path.startsWith('/api/v1/')) problems.push(...apiShape(answer));
    }
    return problems;
  }

  /** The log lines at error level or carrying a stack trace, rendered for a report. */
  badLogs(): string[] {
    return this.logs.filter((l) => l.level >= 50 || typeof l.err?.stack === 'string' || typeof l.stack === 'string').map((l) => `log: ${JSON.stringify(l).slice(0, 600)}`);
  }
}

/** The OCI error envelope with codes of the error table. */
export function ociShape(answer: Answer): string[] {
  const text = answer.body.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [`/v2 error body is not JSON: ${JSON.stringify(text.slice(0, 200))}`];
  }
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return [`/v2 error body has no errors list: ${text.slice(0, 200)}`];
  const problems: string[] = [];
  for (const e of errors as Array<Record<string, unknown>>) {
    if (typeof e?.code !== 'string' || !(e.code in ERROR_CODES)) problems.push(`/v2 error code ${JSON.stringify(e?.code)} is not in the error table`);
    if (typeof e?.message !== 'string') problems.push(`/v2 error without a message: ${text.slice(0, 200)}`);
  }
  if (!String(answer.headers['content-type'] ?? '').startsWith('application/json')) problems.push(`/v2 error Content-Type ${answer.headers['content-type']}`);
  return problems;
}

/** The `/api/v1` JSON error. */
export function apiShape(answer: Answer): string[] {
  const text = answer.body.toString('utf8');
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (body.status === answer.status && typeof body.error_type === 'string' && typeof body.detail === 'string') return [];
  } catch {
    // reported below
  }
  return [`/api/v1 error is not the API's JSON error: ${JSON.stringify(text.slice(0, 200))}`];
}
