/**
 * Every `/repository/...` route reaches exactly the repository its path names, whatever the name's
 * depth and however it is spelled, next to repositories whose names continue with the words of the
 * sub-resources (`qc/lib/app` next to `qc/lib/app/tag/v1`, `qc/lib/app/permissions/user/uma`...).
 *
 * The cases are keyed by the routes of the route table, so a new repository route without a case fails
 * here. Each call runs against targets of three and four components (raw `/`, `%2F` for the whole
 * name, `%2F` after the namespace) and against deeper repositories whose raw paths would name
 * sub-resources (`%2F` only), with and without the trailing slash. Before every call the target is
 * seeded afresh and every name its path could be read as is created; after it, the reply and the
 * target's state must show that the target was reached, and no other repository of the registry may
 * have changed (its row, tags, permissions, policies or manifest labels).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { Digest } from '../../oci/digest.js';
import { parseRepositoryName, splitRepositoryName, type RepositoryName, type Tag } from '../../oci/reference.js';
import type { RepositoryDetails } from '../../registry/repositories.js';
import { repositorySubPath, type ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

type Method = ApiRoute['method'];
type Reply = { statusCode: number; body: string; json(): any };

/** What a case may prepare before its call (an id it needs in its path, say). */
type Prepared = Record<string, string>;

interface Case {
  /** The path below the repository name (no leading `/`; `` for the repository itself), as the route declares it. */
  suffix: string | ((p: Prepared) => string);
  body?: object | ((w: World, name: RepositoryName) => Promise<object>);
  /** Prepares the target (which exists, seeded) before the call. */
  prepare?(w: World, name: RepositoryName): Promise<Prepared>;
  /** Asserts that the reply and the target's state show the call reached the target. */
  check(w: World, name: RepositoryName, res: Reply, p: Prepared): Promise<void>;
}

interface World {
  api: ApiWorld;
  repo(name: RepositoryName): Promise<RepositoryDetails | undefined>;
  /** The distinct manifests of a repository: `v1` is tagged `v1` when seeded, `v2` is untagged. */
  digests(name: RepositoryName): Promise<{ v1: Digest; v2: Digest }>;
}

const NAMESPACE = 'qc';
const WHO = 'orgadmin';
const name = (v: string): RepositoryName => {
  const p = parseRepositoryName(v);
  assert.ok(p.ok, v);
  return p.name;
};
const required = async (w: World, n: RepositoryName): Promise<RepositoryDetails> => {
  const r = await w.repo(n);
  assert.ok(r, `${n} exists`);
  return r;
};
const liveTags = async (w: World, n: RepositoryName) =>
  (await w.api.t.registry.tags.list(await required(w, n), { onlyActive: true, page: 1, limit: 100 })).tags.map((t) => `${t.name}@${t.digest}`);
const permissions = async (w: World, n: RepositoryName) =>
  Object.fromEntries((await w.api.t.accounts!.grants.listRepositoryPermissions(await required(w, n))).map((p) => [`${p.kind}:${p.name}`, p.role]));
const policies = async (w: World, n: RepositoryName) => w.api.t.registry.autoprune.policies.list({ repository: await required(w, n) });
const addPolicy = async (w: World, n: RepositoryName, value: number) =>
  (await w.api.t.registry.autoprune.policies.create({ repository: await required(w, n) }, { method: 'number_of_tags', value }, { actor: { kind: 'anonymous' } })).uuid;
const immutabilityPolicies = async (w: World, n: RepositoryName) => w.api.t.registry.immutability.list({ repository: await required(w, n) });
const addImmutabilityPolicy = async (w: World, n: RepositoryName, tagPattern: string) =>
  (await w.api.t.registry.immutability.create({ repository: await required(w, n) }, { tagPattern }, { actor: { kind: 'anonymous' } })).uuid;
const labels = async (w: World, n: RepositoryName) => (await w.api.t.registry.manifestLabels.list(await required(w, n), (await w.digests(n)).v1)).map((l) => `${l.key}=${l.value}`);
const addLabel = async (w: World, n: RepositoryName) => (await w.api.t.registry.manifestLabels.add(await required(w, n), (await w.digests(n)).v1, { key: 'k', value: n })).id;

const MIRROR_BODY = {
  sync_interval: 60,
  sync_start_date: '2026-01-01T00:00:00Z',
  root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] },
  robot_username: `${NAMESPACE}+mirrorbot`,
};
/** A mirror source naming the repository, so that a reply shows which mirror it read. */
const sourceOf = (n: RepositoryName) => `203.0.113.10/src/${n}`;
const addMirror = async (w: World, n: RepositoryName) =>
  w.api.t.registry.mirrorConfig!.create(await required(w, n), { ...MIRROR_BODY, external_reference: sourceOf(n) }, { actor: { kind: 'anonymous' } });
const mirrorRow = async (w: World, n: RepositoryName) =>
  w.api.t.db.db.selectFrom('repository_mirrors').selectAll().where('repository_id', '=', (await required(w, n)).id).executeTakeFirst();

/** The JSON of a successful reply with the expected status. */
function ok(res: Reply, status: number): any {
  assert.equal(res.statusCode, status, res.body);
  return res.body === '' ? undefined : res.json();
}

/** One case per repository route: `METHOD shape`, the shape being the route's path below the name. */
const CASES: Record<string, Case> = {
  'GET ': {
    suffix: '',
    async check(_w, n, res) {
      const body = ok(res, 200);
      assert.equal(`${body.namespace}/${body.name}`, n);
    },
  },
  'PUT ': {
    suffix: '',
    body: { description: 'described' },
    async check(w, n, res) {
      assert.deepEqual(ok(res, 200), { success: true });
      assert.equal((await required(w, n)).description, 'described');
    },
  },
  'DELETE ': {
    suffix: '',
    async check(w, n, res) {
      ok(res, 204);
      assert.equal(await w.repo(n), undefined);
    },
  },
  'POST /changevisibility': {
    suffix: 'changevisibility',
    body: { visibility: 'public' },
    async check(w, n, res) {
      ok(res, 200);
      assert.equal((await required(w, n)).visibility, 'public');
    },
  },
  'PUT /changestate': {
    suffix: 'changestate',
    body: { state: 'READ_ONLY' },
    async check(w, n, res) {
      ok(res, 200);
      assert.equal((await required(w, n)).state, 'READ_ONLY');
    },
  },
  'GET /tag/': {
    suffix: 'tag/',
    async check(w, n, res) {
      const tags = (ok(res, 200).tags as Array<{ name: string; manifest_digest: string }>).map((t) => `${t.name}@${t.manifest_digest}`);
      assert.deepEqual(tags, [`v1@${(await w.digests(n)).v1}`]);
    },
  },
  'PUT /tag/:tag': {
    suffix: 'tag/w',
    body: async (w, n) => ({ manifest_digest: (await w.digests(n)).v2 }),
    async check(w, n, res) {
      ok(res, 201);
      assert.ok((await liveTags(w, n)).includes(`w@${(await w.digests(n)).v2}`));
    },
  },
  'DELETE /tag/:tag': {
    suffix: 'tag/v1',
    async check(w, n, res) {
      ok(res, 204);
      assert.deepEqual(await liveTags(w, n), []);
    },
  },
  'POST /tag/:tag/restore': {
    suffix: 'tag/v1/restore',
    async prepare(w, n) {
      await w.api.t.registry.tags.set(await required(w, n), 'v1' as Tag, (await w.digests(n)).v2);
      return {};
    },
    body: async (w, n) => ({ manifest_digest: (await w.digests(n)).v1 }),
    async check(w, n, res) {
      ok(res, 200);
      assert.deepEqual(await liveTags(w, n), [`v1@${(await w.digests(n)).v1}`]);
    },
  },
  'POST /tag/:tag/expire': {
    suffix: 'tag/v1/expire',
    body: {},
    async check(w, n, res) {
      assert.equal(ok(res, 200).removed, 1);
      assert.deepEqual(await liveTags(w, n), []);
    },
  },
  'GET /permissions/user/': {
    suffix: 'permissions/user/',
    async prepare(w, n) {
      await w.api.t.accounts!.grants.setRepositoryPermission(await required(w, n), { kind: 'user', name: 'uma' }, 'read');
      return {};
    },
    async check(_w, _n, res) {
      assert.deepEqual(Object.keys(ok(res, 200).permissions).sort(), ['target', 'uma']);
    },
  },
  'GET /permissions/user/:username': {
    suffix: 'permissions/user/uma',
    async prepare(w, n) {
      await w.api.t.accounts!.grants.setRepositoryPermission(await required(w, n), { kind: 'user', name: 'uma' }, 'read');
      return {};
    },
    async check(_w, _n, res) {
      assert.deepEqual(ok(res, 200), { role: 'read', name: 'uma', is_robot: false });
    },
  },
  'PUT /permissions/user/:username': {
    suffix: 'permissions/user/uma',
    body: { role: 'write' },
    async check(w, n, res) {
      ok(res, 200);
      assert.equal((await permissions(w, n))['user:uma'], 'write');
    },
  },
  'DELETE /permissions/user/:username': {
    suffix: 'permissions/user/target',
    async check(w, n, res) {
      ok(res, 204);
      assert.equal((await permissions(w, n))['user:target'], undefined);
    },
  },
  'GET /permissions/team/': {
    suffix: 'permissions/team/',
    async prepare(w, n) {
      await w.api.t.accounts!.grants.setRepositoryPermission(await required(w, n), { kind: 'team', name: 'ops' }, 'read');
      return {};
    },
    async check(_w, _n, res) {
      assert.deepEqual(Object.keys(ok(res, 200).permissions).sort(), ['devs', 'ops']);
    },
  },
  'GET /permissions/team/:teamname': {
    suffix: 'permissions/team/ops',
    async prepare(w, n) {
      await w.api.t.accounts!.grants.setRepositoryPermission(await required(w, n), { kind: 'team', name: 'ops' }, 'admin');
      return {};
    },
    async check(_w, _n, res) {
      assert.deepEqual(ok(res, 200), { role: 'admin', name: 'ops' });
    },
  },
  'PUT /permissions/team/:teamname': {
    suffix: 'permissions/team/ops',
    body: { role: 'write' },
    async check(w, n, res) {
      ok(res, 200);
      assert.equal((await permissions(w, n))['team:ops'], 'write');
    },
  },
  'DELETE /permissions/team/:teamname': {
    suffix: 'permissions/team/devs',
    async check(w, n, res) {
      ok(res, 204);
      assert.equal((await permissions(w, n))['team:devs'], undefined);
    },
  },
  'GET /logs': {
    suffix: 'logs',
    async check(_w, n, res) {
      const logs = ok(res, 200).logs as Array<{ kind: string; namespace: string; repository: string; metadata: { name?: string } }>;
      assert.ok(logs.length > 0);
      for (const l of logs) assert.equal(`${l.namespace}/${l.repository}`, n);
      assert.ok(logs.some((l) => l.kind === 'push_repo' && l.metadata.name === n));
    },
  },
  'GET /autoprunepolicy/': {
    suffix: 'autoprunepolicy/',
    prepare: async (w, n) => ({ uuid: await addPolicy(w, n, 7) }),
    async check(_w, _n, res, p) {
      assert.deepEqual((ok(res, 200).policies as Array<{ uuid: string }>).map((x) => x.uuid), [p.uuid]);
    },
  },
  'POST /autoprunepolicy/': {
    suffix: 'autoprunepolicy/',
    body: { method: 'number_of_tags', value: 3 },
    async check(w, n, res) {
      const { uuid } = ok(res, 201);
      assert.deepEqual((await policies(w, n)).map((x) => [x.uuid, x.value]), [[uuid, 3]]);
    },
  },
  'GET /autoprunepolicy/:policy_uuid': {
    suffix: (p) => `autoprunepolicy/${p.uuid}`,
    prepare: async (w, n) => ({ uuid: await addPolicy(w, n, 7) }),
    async check(_w, _n, res, p) {
      assert.equal(ok(res, 200).uuid, p.uuid);
    },
  },
  'PUT /autoprunepolicy/:policy_uuid': {
    suffix: (p) => `autoprunepolicy/${p.uuid}`,
    prepare: async (w, n) => ({ uuid: await addPolicy(w, n, 7) }),
    body: { method: 'number_of_tags', value: 9 },
    async check(w, n, res, p) {
      ok(res, 204);
      assert.deepEqual((await policies(w, n)).map((x) => [x.uuid, x.value]), [[p.uuid, 9]]);
    },
  },
  'DELETE /autoprunepolicy/:policy_uuid': {
    suffix: (p) => `autoprunepolicy/${p.uuid}`,
    prepare: async (w, n) => ({ uuid: await addPolicy(w, n, 7) }),
    async check(w, n, res, p) {
      assert.equal(ok(res, 200).uuid, p.uuid);
      assert.deepEqual(await policies(w, n), []);
    },
  },
  'GET /immutabilitypolicy/': {
    suffix: 'immutabilitypolicy/',
    prepare: async (w, n) => ({ uuid: await addImmutabilityPolicy(w, n, 'x') }),
    async check(_w, _n, res, p) {
      assert.deepEqual((ok(res, 200).policies as Array<{ uuid: string }>).map((x) => x.uuid), [p.uuid]);
    },
  },
  'POST /immutabilitypolicy/': {
    suffix: 'immutabilitypolicy/',
    body: { tagPattern: 'v1' },
    async check(w, n, res) {
      const { uuid } = ok(res, 201);
      assert.deepEqual((await immutabilityPolicies(w, n)).map((x) => [x.uuid, x.tagPattern]), [[uuid, 'v1']]);
      assert.deepEqual((await w.api.t.registry.tags.list(await required(w, n), { onlyActive: true, page: 1, limit: 10 })).tags.map((t) => [t.name, t.immutable]), [['v1', true]]);
    },
  },
  'GET /immutabilitypolicy/:policy_uuid': {
    suffix: (p) => `immutabilitypolicy/${p.uuid}`,
    prepare: async (w, n) => ({ uuid: await addImmutabilityPolicy(w, n, 'x') }),
    async check(_w, _n, res, p) {
      assert.equal(ok(res, 200).uuid, p.uuid);
    },
  },
  'PUT /immutabilitypolicy/:policy_uuid': {
    suffix: (p) => `immutabilitypolicy/${p.uuid}`,
    prepare: async (w, n) => ({ uuid: await addImmutabilityPolicy(w, n, 'x') }),
    body: { tagPattern: 'y', tagPatternMatches: false },
    async check(w, n, res, p) {
      ok(res, 204);
      assert.deepEqual((await immutabilityPolicies(w, n)).map((x) => [x.uuid, x.tagPattern, x.tagPatternMatches]), [[p.uuid, 'y', false]]);
    },
  },
  'DELETE /immutabilitypolicy/:policy_uuid': {
    suffix: (p) => `immutabilitypolicy/${p.uuid}`,
    prepare: async (w, n) => ({ uuid: await addImmutabilityPolicy(w, n, 'x') }),
    async check(w, n, res, p) {
      assert.equal(ok(res, 200).uuid, p.uuid);
      assert.deepEqual(await immutabilityPolicies(w, n), []);
    },
  },
  'GET /manifest/:digest': {
    suffix: (p) => `manifest/${p.digest}`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v2 }),
    async check(_w, _n, res, p) {
      assert.equal(ok(res, 200).digest, p.digest);
    },
  },
  'GET /manifest/:digest/labels': {
    suffix: (p) => `manifest/${p.digest}/labels`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v1, id: await addLabel(w, n) }),
    async check(_w, _n, res, p) {
      assert.deepEqual((ok(res, 200).labels as Array<{ id: string }>).map((l) => l.id), [p.id]);
    },
  },
  'POST /manifest/:digest/labels': {
    suffix: (p) => `manifest/${p.digest}/labels`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v1 }),
    body: { key: 'added', value: 'here', media_type: 'text/plain' },
    async check(w, n, res) {
      ok(res, 201);
      assert.deepEqual(await labels(w, n), ['added=here']);
    },
  },
  'GET /manifest/:digest/labels/:label_id': {
    suffix: (p) => `manifest/${p.digest}/labels/${p.id}`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v1, id: await addLabel(w, n) }),
    async check(_w, n, res, p) {
      assert.deepEqual([ok(res, 200).id, res.json().value], [p.id, n]);
    },
  },
  'DELETE /manifest/:digest/labels/:label_id': {
    suffix: (p) => `manifest/${p.digest}/labels/${p.id}`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v1, id: await addLabel(w, n) }),
    async check(w, n, res) {
      ok(res, 204);
      assert.deepEqual(await labels(w, n), []);
    },
  },
  'GET /manifest/:digest/security': {
    suffix: (p) => `manifest/${p.digest}/security`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v2 }),
    async check(_w, _n, res) {
      assert.deepEqual(ok(res, 200), { status: 'unsupported', data: null });
    },
  },
  'GET /manifest/:digest/pull_statistics': {
    suffix: (p) => `manifest/${p.digest}/pull_statistics`,
    prepare: async (w, n) => ({ digest: (await w.digests(n)).v2 }),
    async check(_w, _n, res, p) {
      assert.equal(ok(res, 200).manifest_digest, p.digest);
    },
  },
  'GET /mirror': {
    suffix: 'mirror',
    prepare: async (w, n) => (await addMirror(w, n), {}),
    async check(_w, n, res) {
      assert.equal(ok(res, 200).external_reference, sourceOf(n));
    },
  },
  'POST /mirror': {
    suffix: 'mirror',
    body: async (_w, n) => ({ ...MIRROR_BODY, external_reference: sourceOf(n) }),
    async check(w, n, res) {
      ok(res, 201);
      assert.equal((await required(w, n)).state, 'MIRROR');
      assert.equal((await mirrorRow(w, n))?.external_reference, sourceOf(n));
    },
  },
  'PUT /mirror': {
    suffix: 'mirror',
    prepare: async (w, n) => (await addMirror(w, n), {}),
    body: { sync_interval: 777 },
    async check(w, n, res) {
      ok(res, 201);
      assert.equal(Number((await mirrorRow(w, n))?.sync_interval_s), 777);
    },
  },
  'DELETE /mirror': {
    suffix: 'mirror',
    prepare: async (w, n) => (await addMirror(w, n), {}),
    async check(w, n, res) {
      ok(res, 204);
      assert.equal((await required(w, n)).state, 'NORMAL');
      assert.equal(await mirrorRow(w, n), undefined);
    },
  },
  'POST /mirror/sync-now': {
    suffix: 'mirror/sync-now',
    prepare: async (w, n) => (await addMirror(w, n), {}),
    async check(w, n, res) {
      ok(res, 204);
      assert.equal((await mirrorRow(w, n))?.sync_status, 'SYNC_NOW');
    },
  },
  'POST /mirror/sync-cancel': {
    suffix: 'mirror/sync-cancel',
    async prepare(w, n) {
      await addMirror(w, n);
      await w.api.t.registry.mirrorConfig!.syncNow(await required(w, n), { actor: { kind: 'anonymous' } });
      return {};
    },
    async check(w, n, res) {
      ok(res, 204);
      assert.equal((await mirrorRow(w, n))?.sync_status, 'CANCEL');
    },
  },
  'GET /tag/:tag/pull_statistics': {
    suffix: 'tag/v1/pull_statistics',
    async check(w, n, res) {
      assert.equal(ok(res, 200).current_manifest_digest, (await w.digests(n)).v1);
    },
  },
};
const REPOSITORY_ROUTES = API_ROUTES.filter((r) => repositorySubPath(r) !== undefined);

/** How the name is written in the path. */
type Form = 'raw' | 'encoded' | 'encoded-after-namespace';
function namePath(n: RepositoryName, form: Form): string {
  if (form === 'raw') return n;
  if (form === 'encoded') return encodeURIComponent(n);
  const { namespace, repository } = splitRepositoryName(n);
  return `${namespace}/${encodeURIComponent(repository)}`;
}

/** Every name the path `/repository/<n>/<suffix>` could be read as, other than `n`: deeper and shallower. */
function neighbours(n: RepositoryName, suffix: string): RepositoryName[] {
  const parts = n.split('/');
  const out: string[] = [];
  for (let i = 2; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  const below = suffix.split('/').filter(Boolean);
  for (let i = 1; i <= below.length; i++) out.push(`${n}/${below.slice(0, i).join('/')}`);
  out.push(`${n}/quota`, `${n}/tag`, `${n}/logs`);
  return [...new Set(out)].filter((v) => parseRepositoryName(v).ok).map(name);
}

/**
 * What any repository route could change, of every repository but `except`, by full name: the
 * repository row, its tags with their history (and immutability), its permissions, its auto-prune and
 * immutability policies, its manifest labels and its mirror.
 */
async function registryState(w: World, except: RepositoryName): Promise<Map<string, unknown[]>> {
  const db = w.api.t.db.db;
  const repos = await db.selectFrom('repositories as r').innerJoin('namespaces as n', 'n.id', 'r.namespace_id').select(['r.id', 'r.name', 'n.name as namespace', 'r.visibility', 'r.state', 'r.description', 'r.mirror_robot_id']).execute();
  const rows = new Map<number, unknown[]>();
  for (const r of repos) rows.set(r.id, [r.id, r.visibility, r.state, r.description, r.mirror_robot_id]);
  const add = (id: number | null, row: unknown) => rows.get(id!)?.push(row);
  for (const t of await db.selectFrom('tags as t').innerJoin('manifests as m', 'm.id', 't.manifest_id').select(['t.id', 't.repository_id', 't.name', 'm.digest', 't.lifetime_end']).orderBy('t.id').execute()) add(t.repository_id, t);
  for (const p of await db.selectFrom('repository_permissions').selectAll().orderBy(['subject_kind', 'subject_id']).execute()) add(p.repository_id, p);
  for (const p of await db.selectFrom('autoprune_policies').select(['uuid', 'repository_id', 'value']).orderBy('uuid').execute()) add(p.repository_id, p);
  for (const p of await db.selectFrom('immutability_policies').select(['uuid', 'repository_id', 'tag_pattern', 'tag_pattern_matches']).orderBy('uuid').execute()) add(p.repository_id, p);
  for (const t of await db.selectFrom('tags').select(['id', 'repository_id', 'immutable']).orderBy('id').execute()) add(t.repository_id, t);
  for (const m of await db.selectFrom('repository_mirrors').selectAll().execute()) add(m.repository_id, m);
  for (const l of await db.selectFrom('manifest_labels as l').innerJoin('manifests as m', 'm.id', 'l.manifest_id').select(['l.uuid', 'm.repository_id', 'l.key', 'l.value']).orderBy('l.uuid').execute()) add(l.repository_id, l);
  const out = new Map<string, unknown[]>();
  for (const r of repos) if (`${r.namespace}/${r.name}` !== except) out.set(`${r.namespace}/${r.name}`, rows.get(r.id)!);
  return out;
}

for (const dialect of DIALECTS) {
  describe(`/api/v1/repository/... reaches exactly the repository it names (${dialect})`, () => {
    let w: World;
    const digests = new Map<string, { v1: Digest; v2: Digest }>();

    /** Creates the repository (again) as seeded: tag v1, an untagged manifest, grants, one audit entry. */
    async function seed(n: RepositoryName): Promise<void> {
      const t = w.api.t;
      const old = await w.repo(n);
      if (old) await t.registry.repositories.delete(old);
      const { repository } = await t.registry.repositories.create(n, { visibility: 'private' });
      await t.accounts!.grants.setRepositoryPermission(repository, { kind: 'user', name: 'target' }, 'read');
      await t.accounts!.grants.setRepositoryPermission(repository, { kind: 'team', name: 'devs' }, 'read');
      const d = { v1: await w.api.push(n, `${n}:v1`, 'v1'), v2: await w.api.push(n, `${n}:v2`) };
      digests.set(n, d);
      const { namespace, repository: rest } = splitRepositoryName(n);
      await t.accounts!.audit.record('push_repo', { actor: { kind: 'anonymous' }, namespace, repository: rest, metadata: { name: n } });
    }

    before(async () => {
      const api = await buildApiWorld(dialect);
      w = {
        api,
        repo: (n) => api.t.registry.repositories.details(n),
        digests: async (n) => digests.get(n) ?? assert.fail(`${n} was not seeded`),
      };
      const a = api.t.accounts!;
      await a.accounts.createOrganization({ name: NAMESPACE, creator: 'oadmin' });
      await a.teams.createTeam(NAMESPACE, 'devs', { role: 'member' });
      await a.teams.createTeam(NAMESPACE, 'ops', { role: 'member' });
      await a.robots.create(NAMESPACE, 'mirrorbot');
    });
    after(async () => w.api.t.close());

    it('has a case for every repository route of the route table', () => {
      const routes = REPOSITORY_ROUTES.map((r) => `${r.method} ${repositorySubPath(r)}`).sort();
      assert.deepEqual(routes, Object.keys(CASES).sort());
      assert.ok(routes.length >= 20, routes.join(', '));
    });

    /**
     * Runs one case against `n`, written in `form`, with or without the trailing slash; returns what
     * went wrong, or undefined.
     */
    async function call(n: RepositoryName, key: string, form: Form, slash: 'canonical' | 'toggled'): Promise<string | undefined> {
      const c = CASES[key]!;
      const method = key.slice(0, key.indexOf(' ')) as Method;
      await seed(n);
      const prepared = (await c.prepare?.(w, n)) ?? {};
      const suffix = typeof c.suffix === 'function' ? c.suffix(prepared) : c.suffix;
      for (const o of neighbours(n, suffix)) if (!digests.has(o)) await seed(o);
      const before = await registryState(w, n);

      let url = `/api/v1/repository/${namePath(n, form)}${suffix === '' ? '' : `/${suffix}`}`;
      if (slash === 'toggled') url = url.endsWith('/') ? url.slice(0, -1) : `${url}/`;
      const body = typeof c.body === 'function' ? await c.body(w, n) : c.body;
      const res = await w.api.t.app.inject({ method, url, headers: w.api.auth[WHO], ...(body === undefined ? {} : { payload: body }) });
      const problems: string[] = [];
      try {
        await c.check(w, n, res, prepared);
      } catch (err) {
        problems.push((err as Error).message.split('\n')[0]!);
      }
      const afterwards = await registryState(w, n);
      for (const [other, state] of before) {
        if (!isDeepStrictEqual(afterwards.get(other), state)) problems.push(`changed ${other}${afterwards.has(other) ? '' : ' (deleted it)'}`);
      }
      for (const other of afterwards.keys()) if (!before.has(other)) problems.push(`created ${other}`);
      return problems.length ? `${method} ${url} -> ${res.statusCode}: ${problems.join('; ')}` : undefined;
    }

    type Variant = [Form, 'canonical' | 'toggled'];
    const BOTH_SLASHES = (form: Form): Variant[] => [
      [form, 'canonical'],
      [form, 'toggled'],
    ];
    const TARGETS: Array<{ name: string; variants: Variant[] }> = [
      { name: 'qc/lib/app', variants: [...BOTH_SLASHES('raw'), ...BOTH_SLASHES('encoded'), ['encoded-after-namespace', 'canonical']] },
      { name: 'qc/tag/logs/app', variants: [...BOTH_SLASHES('raw'), ...BOTH_SLASHES('encoded'), ['encoded-after-namespace', 'toggled']] },
      // Raw, these paths name sub-resources of qc/lib/app; encoded, the repositories themselves.
      { name: 'qc/lib/app/tag/v1', variants: [...BOTH_SLASHES('encoded'), ['encoded-after-namespace', 'canonical']] },
      { name: 'qc/lib/app/permissions/user/uma', variants: [...BOTH_SLASHES('encoded'), ['encoded-after-namespace', 'toggled']] },
    ];
    for (const target of TARGETS) {
      it(`every route on ${target.name} (${target.variants.map((v) => v.join('/')).join(', ')})`, async () => {
        const failures: string[] = [];
        for (const key of Object.keys(CASES)) {
          for (const [form, slash] of target.variants) {
            const failure = await call(name(target.name), key, form, slash);
            if (failure) failures.push(failure);
          }
        }
        assert.deepEqual(failures, []);
      });
    }

    it('a path that names a sub-resource never reaches the deeper repository it also spells', async () => {
      const app = name('qc/lib/app');
      const deeper = name('qc/lib/app/tag/v1');
      await seed(app);
      await seed(deeper);
      const del = await w.api.t.app.inject({ method: 'DELETE', url: '/api/v1/repository/qc/lib/app/tag/v1', headers: w.api.auth[WHO] });
      assert.equal(del.statusCode, 204, del.body);
      assert.deepEqual(await liveTags(w, app), []);
      assert.deepEqual(await liveTags(w, deeper), [`v1@${(await w.digests(deeper)).v1}`]);
      // GET has no route on a tag: the path still names the tag, not the repository qc/lib/app/tag/v1.
      const get = await w.api.t.app.inject({ method: 'GET', url: '/api/v1/repository/qc/lib/app/tag/v1', headers: w.api.auth[WHO] });
      assert.equal(get.statusCode, 405, get.body);
      assert.equal(get.headers.allow, 'PUT, DELETE');
      const gone = await w.api.t.app.inject({ method: 'DELETE', url: '/api/v1/repository/qc%2Flib%2Fapp%2Ftag%2Fv1', headers: w.api.auth[WHO] });
      assert.equal(gone.statusCode, 204, gone.body);
      assert.equal(await w.repo(deeper), undefined);
      assert.ok(await w.repo(app));
    });

    it('every other route answers with and without its trailing slash', async () => {
      const missed: string[] = [];
      for (const r of API_ROUTES.filter((x) => repositorySubPath(x) === undefined)) {
        const path = `/api/v1${r.path.replace(/:[A-Za-z_]+/g, 'x')}`;
        for (const url of [path, path.endsWith('/') ? path.slice(0, -1) : `${path}/`]) {
          const res = await w.api.t.app.inject({ method: r.method, url });
          if (res.statusCode === 404 && String(res.json().detail).startsWith('no such endpoint')) missed.push(`${r.method} ${url}`);
        }
      }
      assert.deepEqual(missed, []);
    });

    it('names of two and five components, and long ones; a one-component path names no repository', async () => {
      const long = ['qc', ...'wxyz'.split('').map((c) => c.repeat(62))].join('/');
      for (const n of [name('qc/two'), name('qc/a/b/c/five'), name(long)]) {
        await seed(n);
        for (const url of [`/api/v1/repository/${n}/tag/`, `/api/v1/repository/${n}/tag`, `/api/v1/repository/${encodeURIComponent(n)}/tag/`]) {
          const res = await w.api.t.app.inject({ method: 'GET', url, headers: w.api.auth[WHO] });
          assert.deepEqual(ok(res, 200).tags.map((t: { manifest_digest: string }) => t.manifest_digest), [(await w.digests(n)).v1], url);
        }
        const head = await w.api.t.app.inject({ method: 'HEAD', url: `/api/v1/repository/${n}`, headers: w.api.auth[WHO] });
        assert.equal(head.statusCode, 200);
      }
      assert.equal(long.length, 254);
      const one = await w.api.t.app.inject({ method: 'GET', url: '/api/v1/repository/qc', headers: w.api.auth[WHO] });
      assert.equal(one.statusCode, 404, one.body);
      const bad = await w.api.t.app.inject({ method: 'GET', url: '/api/v1/repository/qc/Bad/tag/', headers: w.api.auth[WHO] });
      assert.equal(bad.statusCode, 400, bad.body);
      assert.equal(bad.json().error_type, 'invalid_request');
    });
  });
}
