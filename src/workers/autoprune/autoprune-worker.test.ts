/**
 * The auto-prune worker on both dialects, over a whole registry: which tags each policy prunes, that
 * pruned tags stay restorable through the tags API, the audit entries, repository states and hidden
 * tags that are left alone, the task table, registry-wide defaults, dry runs, metrics, and two workers
 * at once pruning every namespace exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { ConfigError } from '../../config/load.js';
import { AutopruneStore } from '../../db/autoprune-store.js';
import { Metrics } from '../../observability/metrics.js';
import type { RepositoryName } from '../../oci/reference.js';
import { defaultPolicies } from '../../registry/autoprune/autoprune.js';
import type { PolicyInput } from '../../registry/autoprune/policy.js';
import { createAutopruneWorker } from '../../main/compose-autoprune.js';

const DAY = 86_400_000;
const MINUTE = 60_000;
const WHO = { actor: { kind: 'system' as const, name: 'test' } };

/** A registry with helpers: namespaces, repositories with tags of given ages, policies, a worker on a clock. */
function harness(get: () => { t: TestApp; push: ApiWorld['push'] }) {
  let clock = Date.now() + DAY;
  const h = {
    get t() {
      return get().t;
    },
    store: () => new AutopruneStore(h.t.db.db, h.t.db.dialect),
    now: () => clock,
    advance: (ms: number) => (clock += ms),
    worker: (opts: { metrics?: Metrics; intervalMs?: number } = {}) => createAutopruneWorker(h.t.db, h.t.registry.autoprune.pruner, { intervalMs: opts.intervalMs ?? 10 * MINUTE, now: h.now, metrics: opts.metrics }),
    async org(name: string) {
      await h.t.accounts!.accounts.createOrganization({ name, creator: 'oadmin' });
      return (await h.t.accounts!.accounts.getOrganization(name))!.id;
    },
    /** Creates the repository with tags aged as given (days before the clock). */
    async repo(name: string, ages: Record<string, number>) {
      await h.t.registry.repositories.create(name as RepositoryName, { visibility: 'private' });
      for (const tag of Object.keys(ages)) await get().push(name, `${name}:${tag}`, tag);
      const ref = await h.t.registry.repositories.get(name as RepositoryName);
      for (const [tag, days] of Object.entries(ages)) {
        await h.t.db.db.updateTable('tags').set({ lifetime_start: clock - days * DAY }).where('repository_id', '=', ref.id).where('name', '=', tag).execute();
      }
      return ref;
    },
    policy: (namespace: string, input: PolicyInput) => h.t.registry.autoprune.policies.create({ namespace }, input, WHO),
    async repoPolicy(name: string, input: PolicyInput) {
      const repo = (await h.t.registry.repositories.details(name as RepositoryName))!;
      return h.t.registry.autoprune.policies.create({ repository: repo }, input, WHO);
    },
    /** Live tag names of the repository, sorted. */
    async live(name: string) {
      const repo = await h.t.registry.repositories.get(name as RepositoryName);
      return (await h.t.registry.tags.list(repo, { onlyActive: true, page: 1, limit: 100 })).tags.map((t) => t.name).sort();
    },
  };
  return h;
}

for (const dialect of DIALECTS) {
  describe(`auto-prune worker (${dialect})`, () => {
    let w: ApiWorld;
    const h = harness(() => w);
    before(async () => {
      w = await buildApiWorld(dialect);
    });
    after(async () => w?.t.close());

    it('number_of_tags keeps the N newest; pruned tags go to history, restorable through the tags API, with an audit entry each', async () => {
      await h.org('keepn');
      await h.repo('keepn/app', { v1: 5, v2: 4, v3: 3, v4: 2, v5: 1 });
      const policy = await h.policy('keepn', { method: 'number_of_tags', value: 2 });
      const metrics = new Metrics({ defaultMetrics: false });
      const pass = await h.worker({ metrics }).runOnce();
      assert.deepEqual(await h.live('keepn/app'), ['v4', 'v5']);
      const run = pass.runs.find((r) => r.namespace === 'keepn')!;
      assert.deepEqual(run.pruned.map((p) => p.tag).sort(), ['v1', 'v2', 'v3']);
      assert.match(await metrics.registry.getSingleMetricAsString('wharf_autoprune_pruned_tags_total'), /method="number_of_tags"} 3/);

      const { entries } = await w.t.registry.audit!.query({ namespace: 'keepn', kinds: ['autoprune_tag_delete'] });
      assert.equal(entries.length, 3);
      const v1 = entries.find((e) => e.metadata?.tag === 'v1')!;
      assert.equal(v1.repository, 'app');
      assert.deepEqual(v1.actor, { kind: 'system', name: 'autoprune worker' });
      assert.deepEqual({ ...v1.metadata, manifest_digest: undefined }, {
        performer: 'autoprune worker',
        namespace: 'keepn',
        repo: 'app',
        tag: 'v1',
        manifest_digest: undefined,
        method: 'number_of_tags',
        value: 2,
        policy_uuid: policy.uuid,
      });

      const headers = w.auth.orgadmin;
      const history = await w.t.app.inject({ method: 'GET', url: '/api/v1/repository/keepn/app/tag/?onlyActiveTags=false&specificTag=v1', headers });
      const row = (history.json() as { tags: Array<{ manifest_digest: string; end_ts?: number }> }).tags[0]!;
      assert.ok(row.end_ts !== undefined, history.body);
      assert.equal(row.manifest_digest, v1.metadata!.manifest_digest);
      const restored = await w.t.app.inject({ method: 'POST', url: '/api/v1/repository/keepn/app/tag/v1/restore', headers, payload: { manifest_digest: row.manifest_digest } });
      assert.equal(restored.statusCode, 200, restored.body);
      assert.deepEqual(await h.live('keepn/app'), ['v1', 'v4', 'v5']);
    });

    it('creation_date removes tags older than the duration', async () => {
      await h.org('bydate');
      await h.repo('bydate/app', { ancient: 30, old: 8, recent: 6, today: 0 });
      await h.policy('bydate', { method: 'creation_date', value: '1w' });
      await h.worker().runOnce();
      assert.deepEqual(await h.live('bydate/app'), ['recent', 'today']);
    });

    it('patterns select or exclude tags; repository policies add to the namespace policies; date before count', async () => {
      await h.org('pat');
      await h.repo('pat/one', { 'dev-1': 9, 'dev-2': 8, 'dev-3': 7, 'v1.0': 6, 'v1.1': 5, 'dev-4': 1 });
      await h.repo('pat/two', { 'dev-1': 9, 'dev-2': 8, 'v1.0': 30, 'v2.0': 20, 'v3.0': 2 });
      // Namespace: keep the 2 newest dev- tags. Repository two: release tags (not dev-) older than 10 days go.
      await h.policy('pat', { method: 'number_of_tags', value: 2, tagPattern: '^dev-' });
      await h.repoPolicy('pat/two', { method: 'creation_date', value: '10d', tagPattern: '^dev-', tagPatternMatches: false });
      await h.worker().runOnce();
      assert.deepEqual(await h.live('pat/one'), ['dev-3', 'dev-4', 'v1.0', 'v1.1']);
      assert.deepEqual(await h.live('pat/two'), ['dev-1', 'dev-2', 'v3.0']);

      // Date before count: with "keep 3" and "older than 5 days", the old tags go by date and the
      // count then sees only the young ones (all kept); the count alone would have kept an old one.
      await h.org('order');
      await h.repo('order/app', { a: 20, b: 10, c: 3, d: 2 });
      await h.policy('order', { method: 'number_of_tags', value: 3 });
      await h.policy('order', { method: 'creation_date', value: '5d' });
      const pass = await h.worker().runOnce();
      assert.deepEqual(await h.live('order/app'), ['c', 'd']);
      const run = pass.runs.find((r) => r.namespace === 'order')!;
      assert.deepEqual(run.pruned.map((p) => [p.tag, p.method]).sort(), [['a', 'creation_date'], ['b', 'creation_date']]);
    });

    it('skips MIRROR and READ_ONLY repositories, never touches hidden tags, prunes proxy-cache organizations', async () => {
      const nsId = await h.org('states');
      await h.repo('states/normal', { a: 3, b: 2, c: 1 });
      const mirror = await h.repo('states/mirror', { a: 3, b: 2, c: 1 });
      const ro = await h.repo('states/ro', { a: 3, b: 2, c: 1 });
      await w.t.registry.repositories.setState(mirror, 'MIRROR');
      await w.t.registry.repositories.setState(ro, 'READ_ONLY');
      const normal = await w.t.registry.repositories.get('states/normal' as RepositoryName);
      const manifest = await w.t.db.db.selectFrom('manifests').select('id').where('repository_id', '=', normal.id).executeTakeFirstOrThrow();
      await w.t.db.db
        .insertInto('tags')
        .values({ repository_id: normal.id, name: 'hidden-keep', manifest_id: manifest.id, lifetime_start: h.now() - 100 * DAY, lifetime_end: null, hidden: 1 })
        .execute();
      // A proxy-cache organization: a policy there is an explicit choice, and applies.
      await w.t.db.db.insertInto('proxy_cache_configs').values({ namespace_id: nsId, upstream_registry: 'docker.io', insecure: 0, expiration_s: 0, anonymous_pull: 0, revalidate_interval_s: 0, prefetch_layers: 0, answers_for: '[]', username_enc: null, password_enc: null, created_at: 0, updated_at: 0 }).execute();
      await h.policy('states', { method: 'number_of_tags', value: 1 });
      const pass = await h.worker().runOnce();
      assert.deepEqual(await h.live('states/normal'), ['c']);
      assert.deepEqual(await h.live('states/mirror'), ['a', 'b', 'c']);
      assert.deepEqual(await h.live('states/ro'), ['a', 'b', 'c']);
      const hidden = await w.t.db.db.selectFrom('tags').select(['lifetime_end']).where('name', '=', 'hidden-keep').executeTakeFirstOrThrow();
      assert.equal(hidden.lifetime_end, null);
      const run = pass.runs.find((r) => r.namespace === 'states')!;
      assert.deepEqual(run.skipped.sort((a, b) => a.repository.localeCompare(b.repository)), [
        { repository: 'mirror', state: 'MIRROR' },
        { repository: 'ro', state: 'READ_ONLY' },
      ]);
    });

    it('the task table: due after the interval, queued again by a policy change, dropped without policies', async () => {
      const nsId = await h.org('tasks');
      await h.repo('tasks/app', { a: 3, b: 2, c: 0 });
      const policy = await h.policy('tasks', { method: 'number_of_tags', value: 2 });
      const worker = h.worker({ intervalMs: 10 * MINUTE });
      const ran = (pass: { runs: Array<{ namespace: string }> }) => pass.runs.some((r) => r.namespace === 'tasks');
      assert.ok(ran(await worker.runOnce()));
      assert.deepEqual(await h.store().task(nsId), { lastRanMs: h.now(), status: 'success' });
      assert.ok(!ran(await worker.runOnce()), 'not due again before the interval');
      h.advance(5 * MINUTE);
      await h.policy('tasks', { method: 'creation_date', value: '1d' });
      assert.deepEqual((await h.store().task(nsId))?.status, 'queued');
      assert.ok(ran(await worker.runOnce()), 'a new policy queues the namespace at once');
      assert.deepEqual(await h.live('tasks/app'), ['c']);
      h.advance(11 * MINUTE);
      assert.ok(ran(await worker.runOnce()), 'due again after the interval');
      for (const p of await w.t.registry.autoprune.policies.list({ namespace: 'tasks' })) await w.t.registry.autoprune.policies.delete({ namespace: 'tasks' }, p.uuid, WHO);
      assert.ok(policy.uuid);
      h.advance(11 * MINUTE);
      await worker.runOnce();
      assert.equal(await h.store().task(nsId), undefined, 'a namespace without policies loses its task');
    });

    it('a dry run reports and changes nothing', async () => {
      const nsId = await h.org('dry');
      await h.repo('dry/app', { a: 3, b: 2, c: 1 });
      await h.policy('dry', { method: 'number_of_tags', value: 1 });
      const pass = await h.worker().dryRun();
      const run = pass.runs.find((r) => r.namespace === 'dry')!;
      assert.deepEqual(run.pruned.map((p) => p.tag).sort(), ['a', 'b']);
      assert.equal(run.pruned[0]!.digest, undefined);
      assert.deepEqual(await h.live('dry/app'), ['a', 'b', 'c']);
      assert.deepEqual(await h.store().task(nsId), { lastRanMs: null, status: 'queued' });
      assert.equal((await w.t.registry.audit!.query({ namespace: 'dry', kinds: ['autoprune_tag_delete'] })).entries.length, 0);
    });

    it('two workers at once prune every namespace exactly once', async () => {
      const names = Array.from({ length: 8 }, (_, i) => `conc${i}`);
      for (const ns of names) {
        await h.org(ns);
        await h.repo(`${ns}/app`, { a: 4, b: 3, c: 2, d: 1 });
        await h.policy(ns, { method: 'number_of_tags', value: 1 });
      }
      const [one, two] = await Promise.all([h.worker().runOnce(), h.worker().runOnce()]);
      const visited = [...one.runs, ...two.runs].map((r) => r.namespace).filter((n) => n.startsWith('conc'));
      assert.deepEqual(visited.sort(), names);
      if (dialect === 'postgres') assert.ok(one.runs.length > 0 && two.runs.length > 0, `both workers took namespaces (${one.runs.length}, ${two.runs.length})`);
      for (const ns of names) {
        assert.deepEqual(await h.live(`${ns}/app`), ['d']);
        const { entries } = await w.t.registry.audit!.query({ namespace: ns, kinds: ['autoprune_tag_delete'] });
        assert.deepEqual(entries.map((e) => e.metadata!.tag).sort(), ['a', 'b', 'c'], `${ns}: one entry per pruned tag`);
      }
    });

    it('start() polls and stop() waits for the pass in progress', async () => {
      await h.org('polled');
      await h.repo('polled/app', { a: 2, b: 1 });
      await h.policy('polled', { method: 'number_of_tags', value: 1 });
      const worker = createAutopruneWorker(w.t.db, w.t.registry.autoprune.pruner, { intervalMs: 10 * MINUTE, pollMs: 20, now: h.now });
      worker.start();
      const deadline = Date.now() + 10_000;
      while ((await h.live('polled/app')).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await worker.stop();
      assert.deepEqual(await h.live('polled/app'), ['b']);
    });
  });

  describe(`auto-prune registry-wide default policies (${dialect})`, () => {
    let t: TestApp;
    let w: Pick<ApiWorld, 't' | 'push'>;
    const h = harness(() => w);
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'autoprune.default_policies': [{ method: 'number_of_tags', value: 2, tag_pattern: '^keep', tag_pattern_matches: false }] } });
      await t.accounts!.accounts.createUser({ name: 'oadmin', password: 'oadmin-password-1' });
      const world = await buildApiWorldLike(t);
      w = { t, push: world };
    });
    after(async () => t?.close());

    it('apply to every namespace without policies of its own; repository policies still add to them', async () => {
      await h.org('plain');
      await h.repo('plain/app', { a: 5, b: 4, c: 3, d: 2, keep1: 9 });
      await h.org('own');
      await h.repo('own/app', { a: 5, b: 4, c: 3, d: 2 });
      await h.policy('own', { method: 'creation_date', value: '4d' });
      await h.org('repoonly');
      await h.repo('repoonly/app', { a: 5, b: 4, c: 3, d: 2 });
      await h.repoPolicy('repoonly/app', { method: 'creation_date', value: '3d', tagPattern: '^a$' });
      const pass = await h.worker().runOnce();
      // Default: keep the 2 newest tags not starting with "keep".
      assert.deepEqual(await h.live('plain/app'), ['c', 'd', 'keep1']);
      // Own namespace policy instead of the default.
      assert.deepEqual(await h.live('own/app'), ['b', 'c', 'd']);
      // Default plus the repository's own policy.
      assert.deepEqual(await h.live('repoonly/app'), ['c', 'd']);
      const plain = pass.runs.find((r) => r.namespace === 'plain')!;
      assert.ok(plain.pruned.every((p) => p.policyUuid === undefined && p.method === 'number_of_tags' && p.value === 2));
      const { entries } = await t.registry.audit!.query({ namespace: 'plain', kinds: ['autoprune_tag_delete'] });
      assert.equal(entries.length, 2);
      assert.equal(entries[0]!.metadata!.policy_uuid, null);
    });

    it('are checked at start like API input', () => {
      assert.throws(() => defaultPolicies({ autoprune: { enabled: true, interval: 1000, default_policies: [{ method: 'number_of_tags', value: '10x', tag_pattern_matches: true }] } }), (err: unknown) => err instanceof ConfigError && /default_policies\[0\]: Invalid value given/.test(err.message));
      assert.throws(() => defaultPolicies({ autoprune: { enabled: true, interval: 1000, default_policies: [{ method: 'creation_date', value: '2w', tag_pattern: '(', tag_pattern_matches: true }] } }), ConfigError);
    });
  });
}

/** The `push` of an ApiWorld over a bare test app. */
async function buildApiWorldLike(t: TestApp): Promise<ApiWorld['push']> {
  const { digestOf } = await import('../../oci/digest.js');
  return async (repo, seed, tag) => {
    const ref = await t.registry.repositories.get(repo as RepositoryName);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { seed } }));
    const reference = tag === undefined ? { kind: 'digest' as const, digest: digestOf(bytes) } : { kind: 'tag' as const, tag: tag as never };
    return (await t.registry.manifests.put(ref, reference, bytes, 'application/vnd.oci.image.index.v1+json')).digest;
  };
}
