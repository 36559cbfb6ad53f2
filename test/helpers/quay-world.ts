/**
 * A Wharf app for replaying the Quay collection's modules (quay-module.ts) in one auth mode:
 *
 *   session   each module run signs in with the user's name and password as api_module.py does
 *             (GET /csrf_token, POST /api/v1/signin with X-CSRF-Token, cookie + X-Next-CSRF-Token on
 *             every later call); the run signs out at close (as the module does when it exits)
 *   token     each module run sends an API token of that user holding every scope (`quay_token`)
 *
 * Superuser `admin` (password ADMIN_PASSWORD); any other user made with `createUser` has the password
 * `passwordOf(name)`. With `seed`: organization `qc`, repository REPO (`qc/team/app`) with image `one`
 * (config labels and build history) tagged `v1` and `latest`, and image `two` tagged `v2`, all pushed
 * through `/v2`. The bare calls of the superuser (`raw`, `getObject`, `create`, `update`, `remove`,
 * `getTags`) go through one module run as `admin`.
 *
 *   for (const mode of AUTH_MODES) { const w = await buildQuayWorld(dialect, mode); const m = await w.module('dev'); … }
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { API_SCOPES } from '../../src/registry/accounts/api-scopes.js';
import type { Accounts } from '../../src/registry/accounts/accounts.js';
import type { RepositoryName } from '../../src/oci/reference.js';
import { buildTestApp, type TestApp } from './app.js';
import type { TestDialect } from './databases.js';
import { QuayModule, type Answer } from './quay-module.js';
import { injectTransport, QuayClient, type AuthMode, type Transport } from './quay-session.js';

export { AUTH_MODES, type AuthMode } from './quay-session.js';
export { ModuleFailure, needUpdate, QuayModule, type Answer, type Call } from './quay-module.js';

export const REPO = 'qc/team/app';
export const ADMIN_PASSWORD = 'collection-admin-password-1';

/** The password of a user the tests create (other than `admin`). */
export const passwordOf = (name: string): string => (name === 'admin' ? ADMIN_PASSWORD : `${name}-password-1`);

export interface PushedTestImage {
  digest: string;
  configDigest: string;
  layerDigests: string[];
}

export interface QuayWorld {
  t: TestApp;
  a: Accounts;
  mode: AuthMode;
  transport: Transport;
  /** The superuser's module run that the bare calls below go through. */
  admin: QuayModule;
  /** A new module run as `user` (default `admin`), signed in as `mode` says. */
  module(user?: string, password?: string): Promise<QuayModule>;
  /** A user with the standard password (passwordOf) and no rights anywhere. */
  createUser(name: string, opts?: { superuser?: boolean; email?: string }): Promise<void>;
  /** Any call as the superuser's module makes it; `who`: another run, an `Authorization` value, or null (anonymous). */
  raw(method: string, endpoint: string, body?: unknown, who?: QuayModule | string | null): Promise<Answer>;
  getObject(endpoint: string, query?: Record<string, string | number | boolean>, okErrorCodes?: number[]): Promise<any>;
  create(endpoint: string, body: unknown, okCodes?: number[]): Promise<any>;
  update(endpoint: string, body: unknown): Promise<any>;
  remove(endpoint: string): Promise<'changed' | 'unchanged'>;
  getTags(namespace: string, repository: string, opts?: { tag?: string; digest?: string; onlyActive?: boolean }): Promise<any[]>;
  /** Pushes an image through `/v2` as the superuser (distinct content per `seed`), tagged `ref` when a tag. */
  pushImage(repository: string, ref: string, seed: string, extra?: { labels?: Record<string, string> }): Promise<PushedTestImage>;
  /** With `seed`: the images of REPO. */
  one: PushedTestImage;
  two: PushedTestImage;
  /** A module run as a new user with no rights anywhere. */
  outsider(): Promise<QuayModule>;
  /** Basic credentials of robot `qc+writer`, which has write (not admin) on REPO (with `seed`). */
  writer(): Promise<string>;
  /** Ends every module run (sign-out in session mode) and closes the app. */
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function buildQuayWorld(dialect: TestDialect, mode: AuthMode, opts: { config?: Record<string, unknown>; seed?: boolean } = {}): Promise<QuayWorld> {
  const t = await buildTestApp(dialect, { config: opts.config ?? {} });
  const a = t.accounts!;
  const transport = injectTransport(() => t.app);
  await a.accounts.createUser({ name: 'admin', password: ADMIN_PASSWORD, superuser: true });
  const tokens = new Map<string, string>();
  const runs: QuayModule[] = [];

  const module = async (user = 'admin', password = passwordOf(user)): Promise<QuayModule> => {
    let client: QuayClient;
    if (mode === 'session') client = await QuayClient.signIn(transport, user, password);
    else {
      let secret = tokens.get(user);
      if (!secret) {
        secret = (await a.apiTokens.create(user, { name: 'ansible', scopes: [...API_SCOPES] })).secret;
        tokens.set(user, secret);
      }
      client = QuayClient.withToken(transport, secret);
    }
    const run = new QuayModule(client);
    runs.push(run);
    return run;
  };
  const admin = await module();

  const raw = async (method: string, endpoint: string, body?: unknown, who?: QuayModule | string | null): Promise<Answer> => {
    if (who === undefined) return admin.raw(method, endpoint, body);
    if (who instanceof QuayModule) return who.raw(method, endpoint, body);
    const client = QuayClient.anonymous(transport);
    if (who !== null) client.headers.authorization = who;
    return new QuayModule(client).raw(method, endpoint, body);
  };

  const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
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

  let one: PushedTestImage | undefined;
  let two: PushedTestImage | undefined;
  if (opts.seed) {
    await a.accounts.createOrganization({ name: 'qc', creator: 'admin' });
    await t.registry.repositories.create(REPO as RepositoryName, { visibility: 'private' });
    one = await pushImage(REPO, 'v1', 'one');
    await pushImage(REPO, 'latest', 'one');
    two = await pushImage(REPO, 'v2', 'two');
  }
  const seeded = (image: PushedTestImage | undefined) => {
    assert.ok(image, 'the world was built without seed');
    return image;
  };
  let outsiders = 0;
  return {
    t,
    a,
    mode,
    transport,
    admin,
    module,
    async createUser(name, o = {}) {
      await a.accounts.createUser({ name, password: passwordOf(name), ...o });
    },
    raw,
    getObject: (endpoint, query, okErrorCodes) => admin.getObject(endpoint, query, okErrorCodes),
    create: (endpoint, body, okCodes) => admin.create(endpoint, body, okCodes),
    update: (endpoint, body) => admin.put(endpoint, body),
    remove: (endpoint) => admin.remove(endpoint),
    getTags: (namespace, repository, o) => admin.getTags(namespace, repository, o),
    pushImage,
    get one() {
      return seeded(one);
    },
    get two() {
      return seeded(two);
    },
    async outsider() {
      const name = `outsider${++outsiders}`;
      await a.accounts.createUser({ name, password: passwordOf(name) });
      return module(name);
    },
    async writer() {
      const { robot, token } = await a.robots.create('qc', 'writer');
      const repository = await t.registry.repositories.details(REPO as RepositoryName);
      assert.ok(repository, 'the world was built without seed');
      await a.grants.setRepositoryPermission(repository, { kind: 'robot', name: robot.name }, 'write');
      return `Basic ${Buffer.from(`${robot.name}:${token}`).toString('base64')}`;
    },
    async close() {
      for (const run of runs) await run.exit();
      await t.close();
    },
  };
}
