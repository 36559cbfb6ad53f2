/**
 * The calls of the Quay Ansible collection (`infra.quay_configuration`), replayed through `inject()` as
 * its `plugins/module_utils/api_module.py` makes them, for test/quay-collection/*.test.ts:
 *
 *   getObject(endpoint, query)   GET /api/v1/<endpoint>; 404 (or another "ok" error code) is "absent"
 *                                (undefined), anything but 200 otherwise fails the module
 *   create(endpoint, body)       POST; 200, 201 and 204 succeed
 *   update(endpoint, body)       PUT; 200, 201 and 204 succeed
 *   remove(endpoint)             DELETE; 200/201/202/204 "changed", 400/404 "unchanged", else fails
 *   needUpdate(old, new)         the module's comparison: a key of `new` whose value differs in `old`
 *   getTags(…)                   the module's `get_tags`: `…/tag/?onlyActiveTags=…&limit=100&page=N[&specificTag=]`
 *
 * Query values are rendered as Python's `urlencode` renders them (`True`, `False`). Every answer is
 * checked to be below 500 and, for errors, to have Quay's error shape. The module authenticates with an
 * API token (`Authorization: Bearer`).
 *
 * The world: superuser `admin`, organization `qc` (admin is in its owners team), repository
 * `qc/team/app` with image `one` (config labels and build history) tagged `v1` and `latest`, and image
 * `two` tagged `v2`; all pushed through `/v2`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { API_SCOPES } from '../../src/registry/accounts/api-scopes.js';
import type { RepositoryName } from '../../src/oci/reference.js';
import { buildTestApp, type TestApp } from './app.js';
import type { TestDialect } from './databases.js';

export const REPO = 'qc/team/app';
export const ADMIN_PASSWORD = 'collection-admin-password-1';

export interface PushedTestImage {
  digest: string;
  configDigest: string;
  layerDigests: string[];
}

export interface Answer {
  status: number;
  json: any;
  headers: Record<string, unknown>;
}

export interface CollectionWorld {
  t: TestApp;
  /** `Authorization` of the superuser's API token (all scopes). */
  auth: string;
  one: PushedTestImage;
  two: PushedTestImage;
  /** Any call, as the module's `make_json_request` makes it (`authorization` defaults to the token; null: anonymous). */
  raw(method: string, endpoint: string, body?: unknown, authorization?: string | null): Promise<Answer>;
  getObject(endpoint: string, query?: Record<string, string | number | boolean>, okErrorCodes?: number[]): Promise<any>;
  create(endpoint: string, body: unknown, okCodes?: number[]): Promise<any>;
  update(endpoint: string, body: unknown): Promise<any>;
  remove(endpoint: string): Promise<'changed' | 'unchanged'>;
  getTags(namespace: string, repository: string, opts?: { tag?: string; digest?: string; onlyActive?: boolean }): Promise<any[]>;
  /** Pushes an image through `/v2` as the superuser (distinct content per `seed`), tagged `ref` when a tag. */
  pushImage(repository: string, ref: string, seed: string, extra?: { labels?: Record<string, string> }): Promise<PushedTestImage>;
  /** A user with an API token (all scopes) and no rights anywhere. */
  outsider(): Promise<string>;
  /** Basic credentials of robot `qc+writer`, which has write (not admin) on REPO. */
  writer(): Promise<string>;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Python's urlencode of the module's query parameters. */
function urlencode(query: Record<string, string | number | boolean>): string {
  return Object.entries(query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v))}`)
    .join('&');
}

/** The module's `need_update`: whether `next` holds a key whose value differs from `old`'s. */
export function needUpdate(old: Record<string, unknown> | undefined, next: Record<string, unknown>): boolean {
  return Object.keys(next).some((k) => JSON.stringify(next[k]) !== JSON.stringify((old ?? {})[k] ?? null));
}

export async function buildCollectionWorld(dialect: TestDialect, config: Record<string, unknown> = {}): Promise<CollectionWorld> {
  const t = await buildTestApp(dialect, { config });
  const a = t.accounts!;
  await a.accounts.createUser({ name: 'admin', password: ADMIN_PASSWORD, superuser: true });
  await a.accounts.createOrganization({ name: 'qc', creator: 'admin' });
  const { repository } = await t.registry.repositories.create(REPO as RepositoryName, { visibility: 'private' });
  const auth = `Bearer ${(await a.apiTokens.create('admin', { name: 'collection', scopes: [...API_SCOPES] })).secret}`;
  const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

  const raw = async (method: string, endpoint: string, body?: unknown, authorization: string | null = auth): Promise<Answer> => {
    const res = await t.app.inject({
      method: method as 'GET',
      url: `/api/v1/${endpoint.replace(/^\//, '')}`,
      headers: { accept: 'application/json', ...(authorization ? { authorization } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    assert.ok(res.statusCode < 500, `${method} ${endpoint}: ${res.statusCode} ${res.body}`);
    const json = res.body ? JSON.parse(res.body) : {};
    if (res.statusCode >= 400) {
      assert.equal(json.status, res.statusCode, `${method} ${endpoint}: error shape ${res.body}`);
      assert.equal(typeof json.error_type, 'string', res.body);
      assert.equal(typeof json.detail, 'string', res.body);
    }
    return { status: res.statusCode, json, headers: res.headers };
  };

  const getObject = async (endpoint: string, query?: Record<string, string | number | boolean>, okErrorCodes = [404]) => {
    const res = await raw('GET', query ? `${endpoint}?${urlencode(query)}` : endpoint);
    if (okErrorCodes.includes(res.status)) return undefined;
    assert.equal(res.status, 200, `GET ${endpoint}: ${JSON.stringify(res.json)}`);
    return res.json;
  };
  const create = async (endpoint: string, body: unknown, okCodes = [200, 201, 204]) => {
    const res = await raw('POST', endpoint, body);
    assert.ok(okCodes.includes(res.status), `POST ${endpoint}: ${res.status} ${JSON.stringify(res.json)}`);
    return res.json;
  };
  const update = async (endpoint: string, body: unknown) => {
    const res = await raw('PUT', endpoint, body);
    assert.ok([200, 201, 204].includes(res.status), `PUT ${endpoint}: ${res.status} ${JSON.stringify(res.json)}`);
    return res.json;
  };
  const remove = async (endpoint: string) => {
    const res = await raw('DELETE', endpoint);
    if ([200, 201, 202, 204].includes(res.status)) return 'changed' as const;
    assert.ok([400, 404].includes(res.status), `DELETE ${endpoint}: ${res.status} ${JSON.stringify(res.json)}`);
    return 'unchanged' as const;
  };
  const getTags = async (namespace: string, repository: string, opts: { tag?: string; digest?: string; onlyActive?: boolean } = {}) => {
    const out: any[] = [];
    for (let page = 1; ; page++) {
      const query: Record<string, string | number | boolean> = { onlyActiveTags: opts.onlyActive ?? true, limit: 100 };
      if (opts.tag) query.specificTag = opts.tag;
      query.page = page;
      const tags = await getObject(`repository/${namespace}/${repository}/tag/`, query);
      if (!tags) break;
      const list: any[] = tags.tags ?? [];
      out.push(...(opts.tag || !opts.digest ? list : list.filter((x) => x.manifest_digest === opts.digest)));
      if (!tags.has_additional) break;
    }
    return out;
  };

  const v2 = async (method: 'POST' | 'PUT', url: string, payload: Buffer, contentType: string) => {
    const res = await t.app.inject({ method, url, payload, headers: { authorization: basic, 'content-type': contentType } });
    assert.ok(res.statusCode === 201, `${method} ${url}: ${res.statusCode} ${res.body}`);
  };
  const pushImage = async (repository: string, ref: string, seed: string, extra: { labels?: Record<string, string> } = {}): Promise<PushedTestImage> => {
    const layers = [Buffer.from(`layer one of ${seed}`), Buffer.from(`layer two of ${seed}`)];
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { maintainer: 'Wharf Tests <qa@example.test>', 'org.example.seed': seed, ...extra.labels } },
        rootfs: { type: 'layers', diff_ids: layers.map(sha256) },
        history: [
          { created: '2026-01-02T03:04:05Z', created_by: `/bin/sh -c #(nop) ADD file:${seed} in / ` },
          { created: '2026-01-02T03:04:06Z', created_by: '/bin/sh -c #(nop)  LABEL maintainer=Wharf', empty_layer: true },
          { created: '2026-01-02T03:04:07Z', created_by: '/bin/sh -c make install', author: 'Wharf Tests', comment: 'build step' },
        ],
      }),
    );
    for (const blob of [...layers, config]) await v2('POST', `/v2/${repository}/blobs/uploads/?digest=${sha256(blob)}`, blob, 'application/octet-stream');
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
      }),
    );
    await v2('PUT', `/v2/${repository}/manifests/${ref}`, manifest, 'application/vnd.oci.image.manifest.v1+json');
    return { digest: sha256(manifest), configDigest: sha256(config), layerDigests: layers.map(sha256) };
  };

  const one = await pushImage(REPO, 'v1', 'one');
  await pushImage(REPO, 'latest', 'one');
  const two = await pushImage(REPO, 'v2', 'two');
  let outsiders = 0;
  return {
    t,
    auth,
    one,
    two,
    raw,
    getObject,
    create,
    update,
    remove,
    getTags,
    pushImage,
    async outsider() {
      const name = `outsider${++outsiders}`;
      await a.accounts.createUser({ name, password: `${name}-password-1` });
      return `Bearer ${(await a.apiTokens.create(name, { name: 'collection', scopes: [...API_SCOPES] })).secret}`;
    },
    async writer() {
      const { robot, token } = await a.robots.create('qc', 'writer');
      await a.grants.setRepositoryPermission(repository, { kind: 'robot', name: robot.name }, 'write');
      return `Basic ${Buffer.from(`${robot.name}:${token}`).toString('base64')}`;
    },
    close: () => t.close(),
  };
}
