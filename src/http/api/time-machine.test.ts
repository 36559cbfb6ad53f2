/**
 * Tag expiration and the time machine through `/api/v1` and `/v2`: an expired tag leaves the live view
 * at once and is history from its expiry; restoring works within the namespace's window only; the
 * window is read and set as Quay's `tag_expiration_s` on organizations and users.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAY_S = 86_400;

for (const dialect of DIALECTS) {
  describe(`/api/v1 tag expiration and the time machine (${dialect})`, () => {
    let w: ApiWorld;
    let d1: string, d2: string;
    before(async () => {
      w = await buildApiWorld(dialect);
      d1 = w.digests['orga/priv'].v1;
      d2 = w.digests['orga/priv'].v2;
    });
    after(async () => w.t.close());

    const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, who: keyof ApiWorld['auth'], payload?: unknown) =>
      w.t.app.inject({ method, url: `/api/v1${url}`, headers: w.auth[who], ...(payload === undefined ? {} : { payload: payload as object }) });
    const v2 = (url: string) => w.t.app.inject({ url: `/v2${url}`, headers: { ...w.auth.robot, accept: '*/*' } });
    const lastAudit = async (kind: string) => (await w.t.accounts!.audit.query({ kinds: [kind], limit: 1 })).entries[0];
    type TagView = { name: string; manifest_digest: string; end_ts?: number; expiration?: string };
    const tags = async (query: string) => {
      const res = await api('GET', `/repository/orga/priv/tag/?${query}`, 'member');
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { tags: TagView[] }).tags;
    };

    it('sets and clears a tag expiration (Quay: epoch seconds, in the future), audited', async () => {
      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'member', { manifest_digest: d1 })).statusCode, 201);
      const past = await api('PUT', '/repository/orga/priv/tag/exp', 'member', { expiration: Date.now() / 1000 - 10 });
      assert.equal(past.statusCode, 400, past.body);
      assert.match(past.json().detail, /not in the future/);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'member', {})).statusCode, 400);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'member', { expiration: 'soon' })).statusCode, 400);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/nosuch', 'member', { expiration: Date.now() / 1000 + 60 })).statusCode, 404);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'user', { expiration: Date.now() / 1000 + 60 })).statusCode, 404);

      const when = Math.floor(Date.now() / 1000) + 3600;
      const res = await api('PUT', '/repository/orga/priv/tag/exp', 'member', { expiration: when });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(res.json(), { name: 'exp', manifest_digest: d1 });
      assert.deepEqual((await lastAudit('change_tag_expiration'))?.metadata, { tag: 'exp', manifest_digest: d1, expiration_date: new Date(when * 1000).toISOString(), old_expiration_date: null });
      // A live tag with an expiry shows it as end_ts and expiration, as Quay does.
      const [live] = await tags('specificTag=exp');
      assert.equal(live!.end_ts, when);
      assert.equal(live!.expiration, new Date(when * 1000).toUTCString());
      assert.equal((await v2('/orga/priv/manifests/exp')).statusCode, 200);

      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'member', { expiration: null })).statusCode, 201);
      assert.equal((await tags('specificTag=exp'))[0]!.end_ts, undefined);
      assert.equal((await lastAudit('change_tag_expiration'))?.metadata?.expiration_date, null);
    });

    it('refuses an expiration no date can show (400) and changes nothing, not even the target given with it', async () => {
      assert.equal((await api('PUT', '/repository/orga/priv/tag/far', 'member', { manifest_digest: d1 })).statusCode, 201);
      for (const expiration of [1e13, 8.64e12 + 1, 253_402_300_800, 1e300, Number.MAX_VALUE, -1, -1e300]) {
        const res = await api('PUT', '/repository/orga/priv/tag/far', 'member', { manifest_digest: d2, expiration });
        assert.equal(res.statusCode, 400, `${expiration}: ${res.body}`);
        assert.match(res.json().detail, /expiration/);
      }
      const [row] = await tags('specificTag=far');
      assert.equal(row!.manifest_digest, d1, 'the target did not move');
      assert.equal(row!.end_ts, undefined, 'no expiry was stored');
      // The last second of year 9999 is the latest expiry.
      const latest = await api('PUT', '/repository/orga/priv/tag/far', 'member', { expiration: 253_402_300_799 });
      assert.equal(latest.statusCode, 201, latest.body);
      assert.equal((await tags('specificTag=far'))[0]!.expiration, 'Fri, 31 Dec 9999 23:59:59 GMT');
      assert.equal((await api('POST', '/repository/orga/priv/tag/far/expire', 'member')).statusCode, 200);
    });

    it('shows and clears an expiry stored before expirations were bounded', async () => {
      assert.equal((await api('PUT', '/repository/orga/priv/tag/old', 'member', { manifest_digest: d1 })).statusCode, 201);
      await w.t.db.db.updateTable('tags').set({ expires_at: 1e16 }).where('name', '=', 'old').execute();
      const [row] = await tags('specificTag=old');
      assert.equal(row!.expiration, 'Fri, 31 Dec 9999 23:59:59 GMT', 'shown as the latest time Wharf shows');
      const cleared = await api('PUT', '/repository/orga/priv/tag/old', 'member', { expiration: null });
      assert.equal(cleared.statusCode, 201, cleared.body);
      assert.equal((await tags('specificTag=old'))[0]!.end_ts, undefined);
      assert.equal((await lastAudit('change_tag_expiration'))?.metadata?.old_expiration_date, '9999-12-31T23:59:59.999Z');
      assert.equal((await api('POST', '/repository/orga/priv/tag/old/expire', 'member')).statusCode, 200);
    });

    it('takes an expired tag out of the live view at once; it is history from its expiry and restorable', async () => {
      const expiry = Date.now() + 300;
      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'member', { manifest_digest: d2, expiration: expiry / 1000 })).statusCode, 201);
      assert.equal((await v2('/orga/priv/manifests/exp')).statusCode, 200);
      await sleep(expiry - Date.now() + 20);
      assert.equal((await v2('/orga/priv/manifests/exp')).statusCode, 404);
      assert.equal((await v2('/orga/priv/manifests/' + d2)).statusCode, 200, 'the manifest stays, by digest');
      const list = (await v2('/orga/priv/tags/list')).json() as { tags: string[] };
      assert.equal(list.tags.includes('exp'), false);
      assert.deepEqual(await tags('specificTag=exp'), []);
      const history = await tags('specificTag=exp&onlyActiveTags=false');
      assert.deepEqual(history.map((t) => [t.manifest_digest, t.end_ts]), [
        [d2, Math.floor(expiry / 1000)],
        [d1, history[1]!.end_ts],
      ]);
      const repo = (await api('GET', '/repository/orga/priv', 'member')).json() as { tag_count?: number };
      if (repo.tag_count !== undefined) assert.equal(repo.tag_count, 1, 'v1 only');
      // Not live: it can be neither deleted nor given an expiration.
      assert.equal((await api('DELETE', '/repository/orga/priv/tag/exp', 'member')).statusCode, 404);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/exp', 'member', { expiration: Date.now() / 1000 + 60 })).statusCode, 404);
      const restored = await api('POST', '/repository/orga/priv/tag/exp/restore', 'member', { manifest_digest: d2 });
      assert.equal(restored.statusCode, 200, restored.body);
      assert.equal((await v2('/orga/priv/manifests/exp')).statusCode, 200);
      const rows = await tags('specificTag=exp&onlyActiveTags=false');
      assert.deepEqual(rows.map((t) => [t.manifest_digest, t.end_ts]), [
        [d2, undefined],
        [d2, Math.floor(expiry / 1000)],
        [d1, history[1]!.end_ts],
      ]);
    });

    it("reads and sets an organization's window (tag_expiration_s) among the configured options, admins only", async () => {
      let res = await api('GET', '/organization/orga', 'orgadmin');
      assert.equal(res.json().tag_expiration_s, 14 * DAY_S);
      assert.equal((await api('GET', '/organization/orga', 'member')).json().tag_expiration_s, undefined, 'only admins see it');
      res = await api('PUT', '/organization/orga', 'orgadmin', { tag_expiration_s: 12345 });
      assert.equal(res.statusCode, 400);
      assert.match(res.json().detail, /tag_expiration_s must be one of 0 \(0s\), 86400 \(1d\), 604800 \(1w\), 1209600 \(2w\), 2419200 \(4w\)/);
      assert.equal((await api('PUT', '/organization/orga', 'member', { tag_expiration_s: DAY_S })).statusCode, 403);
      res = await api('PUT', '/organization/orga', 'orgadmin', { tag_expiration_s: DAY_S });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().tag_expiration_s, DAY_S);
      assert.deepEqual((await lastAudit('org_change_tag_expiration'))?.metadata, { tag_expiration_s: DAY_S, old_tag_expiration_s: 14 * DAY_S });
    });

    it("restores only within the namespace's window", async () => {
      await api('PUT', '/repository/orga/priv/tag/win', 'member', { manifest_digest: d1 });
      await api('PUT', '/repository/orga/priv/tag/win', 'member', { manifest_digest: d2 });
      // Ended just now: inside orga's one-day window.
      assert.equal((await api('POST', '/repository/orga/priv/tag/win/restore', 'member', { manifest_digest: d1 })).statusCode, 200);
      await api('PUT', '/repository/orga/priv/tag/win', 'member', { manifest_digest: d2 });
      // Its rows pointing at d1 ended two days ago: outside.
      const repoId = (await w.t.registry.repositories.get('orga/priv' as never)).id;
      const manifest = w.t.db.db.selectFrom('manifests').select('id').where('repository_id', '=', repoId).where('digest', '=', d1);
      await w.t.db.db.updateTable('tags').set({ lifetime_end: Date.now() - 2 * DAY_S * 1000 }).where('repository_id', '=', repoId).where('name', '=', 'win').where('manifest_id', 'in', manifest).execute();
      const refused = await api('POST', '/repository/orga/priv/tag/win/restore', 'member', { manifest_digest: d1 });
      assert.equal(refused.statusCode, 404, refused.body);
      assert.match(refused.json().detail, /outside the time-machine window of namespace orga \(1d\); it can no longer be restored/);
      // A longer window brings it back within reach.
      assert.equal((await api('PUT', '/organization/orga', 'orgadmin', { tag_expiration_s: 28 * DAY_S })).statusCode, 200);
      assert.equal((await api('POST', '/repository/orga/priv/tag/win/restore', 'member', { manifest_digest: d1 })).statusCode, 200);
      assert.equal(((await tags('specificTag=win'))[0]!).manifest_digest, d1);
    });

    it("reads and sets a user's own window", async () => {
      let res = await api('GET', '/user/', 'member');
      assert.equal(res.json().tag_expiration_s, 14 * DAY_S);
      assert.equal((await api('PUT', '/user/', 'member', { tag_expiration_s: 5 })).statusCode, 400);
      res = await api('PUT', '/user/', 'member', { tag_expiration_s: 7 * DAY_S });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().tag_expiration_s, 7 * DAY_S);
      assert.deepEqual((await lastAudit('user_change_tag_expiration'))?.metadata, { tag_expiration_s: 7 * DAY_S, old_tag_expiration_s: 14 * DAY_S });
    });

    it('with a window of 0s keeps no history: GC removes it at once and records the pass in the audit log', async () => {
      await w.push('orga/priv', 'short-lived', 'gone');
      assert.equal((await api('DELETE', '/repository/orga/priv/tag/gone', 'member')).statusCode, 204);
      assert.equal((await api('PUT', '/organization/orga', 'orgadmin', { tag_expiration_s: 0 })).statusCode, 200);
      await sleep(5);
      const report = await w.t.registry.gc.run();
      assert.ok(report.tags >= 1, JSON.stringify(report));
      const entry = await lastAudit('garbage_collection');
      assert.deepEqual(entry?.actor, { kind: 'system', name: 'gc' });
      assert.equal(entry?.metadata?.tags, report.tags);
      assert.deepEqual(await tags('specificTag=gone&onlyActiveTags=false'), []);
    });
  });
}
