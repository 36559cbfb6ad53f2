/**
 * Drives a repository mirror of a listening Wharf through `/api/v1` as an operator does, for the
 * end-to-end tests and the mirror benchmark:
 *
 *   POST /api/v1/repository/{repo}/mirror           {external_reference, sync_interval, …} → 201
 *   POST /api/v1/repository/{repo}/mirror/sync-now  → 204
 *   GET  /api/v1/repository/{repo}/mirror           → {sync_status, progress, last_run, …}
 *
 * After a sync-now (204: the status is SYNC_NOW until a worker claims the mirror), the run has
 * finished once the status is neither SYNC_NOW nor SYNCING; `last_run` then describes it. (Its
 * timestamps have whole seconds, so two runs within a second cannot be told apart by them.)
 */
import { setTimeout as sleep } from 'node:timers/promises';

export type MirrorStatus = 'NEVER_RUN' | 'SYNC_NOW' | 'SYNCING' | 'SUCCESS' | 'FAIL' | 'CANCEL';

export interface MirrorRunView {
  started: string | null;
  finished: string;
  outcome: 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL';
  message: string | null;
  bytes: number;
}

/** The fields of GET …/mirror that the tests and the benchmark read. */
export interface MirrorView {
  is_enabled: boolean;
  external_reference: string;
  sync_status: MirrorStatus;
  robot_username: string;
  root_rule: { rule_kind: string; rule_value: string[] };
  external_registry_username?: string | null;
  progress: { tags_total: number | null; tags_done: number; bytes: number; current_tag: string | null; started: string } | null;
  last_run: MirrorRunView | null;
}

/** The body of POST …/mirror (see docs/mirroring.md). */
export interface MirrorConfigInput {
  external_reference: string;
  sync_interval: number;
  sync_start_date: string;
  root_rule: { rule_kind: 'tag_glob_csv'; rule_value: string[] };
  robot_username: string;
  is_enabled?: boolean;
  skopeo_timeout_interval?: number;
  external_registry_username?: string;
  external_registry_password?: string;
  external_registry_config?: { verify_tls?: boolean; unsigned_images?: boolean; proxy?: { http_proxy?: string; https_proxy?: string; no_proxy?: string } };
  architecture_filter?: string[];
  rollback_on_failure?: boolean;
}

export interface ApiAnswer {
  status: number;
  text: string;
  json: any;
}

/** One `/api/v1` request with `authorization`; the body parsed when it is JSON. */
export async function apiRequest(baseUrl: string, authorization: string, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(`${baseUrl}/api/v1${path}`, {
    method,
    headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** `YYYY-MM-DDTHH:MM:SSZ`, the form `sync_start_date` takes. */
export function syncStartDate(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The mirror API of one repository (`ns/path…`, raw `/`), as `authorization`. */
export class MirrorApi {
  constructor(
    readonly baseUrl: string,
    readonly authorization: string,
    readonly repository: string,
  ) {}

  private call(method: string, suffix: string, body?: unknown): Promise<ApiAnswer> {
    return apiRequest(this.baseUrl, this.authorization, method, `/repository/${this.repository}/mirror${suffix}`, body);
  }

  /** POST …/mirror; throws unless 201. */
  async create(input: MirrorConfigInput): Promise<void> {
    const r = await this.call('POST', '', input);
    if (r.status !== 201) throw new Error(`POST mirror of ${this.repository}: ${r.status} ${r.text.slice(0, 500)}`);
  }

  async get(): Promise<MirrorView> {
    const r = await this.call('GET', '');
    if (r.status !== 200 || typeof r.json !== 'object') throw new Error(`GET mirror of ${this.repository}: ${r.status} ${r.text.slice(0, 500)}`);
    return r.json as MirrorView;
  }

  /** POST …/mirror/sync-now; throws unless 204. */
  async syncNow(): Promise<void> {
    const r = await this.call('POST', '/sync-now');
    if (r.status !== 204) throw new Error(`POST mirror/sync-now of ${this.repository}: ${r.status} ${r.text.slice(0, 500)}`);
  }

  /**
   * Polls GET …/mirror every `intervalMs` until the run asked for (sync-now, or one in flight) has
   * finished: the status is neither SYNC_NOW nor SYNCING and `last_run` is set. Call it after a
   * successful sync-now (which leaves SYNC_NOW until a worker claims the mirror), or while a run is in
   * flight. Returns the first view that shows it finished; throws after `timeoutMs` with the last view.
   */
  async waitForRun(opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<MirrorView> {
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = await this.get();
      if (view.sync_status !== 'SYNCING' && view.sync_status !== 'SYNC_NOW' && view.last_run !== null) return view;
      if (Date.now() >= deadline) throw new Error(`mirror of ${this.repository}: the run did not finish within ${timeoutMs} ms; last view ${JSON.stringify(view)}`);
      await sleep(opts.intervalMs ?? 50);
    }
  }

  /** sync-now, then waitForRun; returns the finished run's view. */
  async syncAndWait(opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<MirrorView> {
    await this.syncNow();
    return this.waitForRun(opts);
  }
}
