import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

type Log = { kind: string; metadata: Record<string, unknown>; ip: string | null; datetime: string; performer: { kind: string; name: string } | null; namespace: string | null; repository: string | null };
type Page = { start_time: string; end_time: string; logs: Log[]; next_page?: string };

for (const dialect of DIALECTS) {
  describe(`/api/v1 audit logs (${dialect})`, () => {
    let w: ApiWorld;
    let before0: number;
    before(async () => {
      w = await buildApiWorld(dialect);
      before0 = Date.now() - 1;
      const api = (method: 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => w.t.app.inject({ method, url: `/api/v1${url}`, headers: w.auth.orgadmin, payload });
      await api('PUT', '/repository/orga/priv/tag/a', { manifest_digest: w.digests['orga/priv'].v2 });
      await api('DELETE', '/repository/orga/priv/tag/a');
      await api('PUT', '/repository/orga/pub/permissions/user/target', { role: 'read' });
      await w.t.app.inject({ method: 'POST', url: '/api/v1/repository', headers: w.auth.user, payload: { namespace: 'uma', repository: 'mine', visibility: 'private' } });
    });
    after(async () => w.t.close());

    const get = (url: string, who: keyof ApiWorld['auth']) => w.t.app.inject({ url: `/api/v1${url}`, headers: w.auth[who] });
    const page = async (url: string, who: keyof ApiWorld['auth'] = 'orgadmin') => {
      const res = await get(url, who);
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as Page;
    };

    it("lists an organization's log newest first, with performer, ip and Quay's fields", async () => {
      const body = await page('/organization/orga/logs');
      assert.deepEqual(body.logs.map((l) => l.kind), ['change_repo_permission', 'delete_tag', 'create_tag']);
      const l = body.logs[1]!;
      assert.deepEqual(l.performer, { kind: 'user', name: 'oadmin' });
      assert.equal(l.namespace, 'orga');
      assert.equal(l.repository, 'priv');
      assert.deepEqual(l.metadata, { tag: 'a', manifest_digest: w.digests['orga/priv'].v2 });
      assert.equal(typeof l.ip, 'string');
      assert.match(l.datetime, /GMT$/);
      assert.match(body.start_time, /GMT$/);
      assert.match(body.end_time, /GMT$/);
      assert.equal(body.next_page, undefined);
    });

    it('filters by kind (repeated or comma-separated) and time (ISO, ms, MM/DD/YYYY), and pages', async () => {
      assert.deepEqual((await page('/organization/orga/logs?kind=delete_tag&kind=create_tag')).logs.map((l) => l.kind), ['delete_tag', 'create_tag']);
      assert.deepEqual((await page('/organization/orga/logs?kind=delete_tag,change_repo_permission')).logs.map((l) => l.kind), ['change_repo_permission', 'delete_tag']);
      assert.deepEqual((await page(`/organization/orga/logs?endtime=${before0}`)).logs, []);
      assert.equal((await page(`/organization/orga/logs?starttime=${new Date(before0).toISOString()}`)).logs.length, 3);
      const today = new Date();
      const us = `${today.getUTCMonth() + 1}/${today.getUTCDate()}/${today.getUTCFullYear()}`;
      assert.equal((await page(`/organization/orga/logs?starttime=${encodeURIComponent(us)}&endtime=${encodeURIComponent(us)}`)).logs.length, 3);
      const first = await page('/organization/orga/logs?limit=2');
      assert.equal(first.logs.length, 2);
      assert.ok(first.next_page);
      const second = await page(`/organization/orga/logs?limit=2&next_page=${first.next_page}`);
      assert.deepEqual(second.logs.map((l) => l.kind), ['create_tag']);
      for (const q of ['starttime=yesterday', 'endtime=1/2', 'kind=Bad-Kind', 'next_page=abc', 'limit=0', `starttime=${Date.now() + 100000}&endtime=${Date.now()}`]) {
        assert.equal((await get(`/organization/orga/logs?${q}`, 'orgadmin')).statusCode, 400, q);
      }
    });

    it("lists a repository's log for its admins", async () => {
      assert.deepEqual((await page('/repository/orga/priv/logs')).logs.map((l) => l.kind), ['delete_tag', 'create_tag']);
      assert.deepEqual((await page('/repository/orga/priv/logs', 'superuser')).logs.length, 2);
      assert.equal((await get('/repository/orga/priv/logs', 'anonymous')).statusCode, 401);
      assert.equal((await get('/repository/orga/priv/logs', 'member')).statusCode, 403);
      assert.equal((await get('/repository/orga/priv/logs', 'user')).statusCode, 404);
      assert.equal((await get('/repository/orga/Bad/logs', 'orgadmin')).statusCode, 400);
    });

    it("refuses an organization's log to anonymous, non-admins and robots, and 404s unknown organizations", async () => {
      assert.equal((await get('/organization/orga/logs', 'anonymous')).statusCode, 401);
      assert.equal((await get('/organization/orga/logs', 'member')).statusCode, 403);
      assert.equal((await get('/organization/orga/logs', 'robot')).statusCode, 403);
      assert.equal((await get('/organization/orgb/logs', 'orgadmin')).statusCode, 404, 'an organization the caller cannot see is not found, whether or not it exists');
      assert.equal((await get('/organization/nope/logs', 'orgadmin')).statusCode, 404);
      assert.equal((await page('/organization/orga/logs', 'superuser')).logs.length, 3);
    });

    it('never shows a reused name the entries of its previous owner', async () => {
      const a = w.t.accounts!;
      await a.accounts.createOrganization({ name: 'reused', creator: 'oadmin' });
      await a.audit.record('push_repo', { actor: { kind: 'anonymous' }, namespace: 'reused', repository: 'secret', metadata: {} });
      assert.equal((await page('/organization/reused/logs', 'superuser')).logs.length, 1);
      await a.accounts.deleteOrganization('reused');
      await new Promise((r) => setTimeout(r, 5));
      await a.accounts.createOrganization({ name: 'reused', creator: 'root' });
      assert.deepEqual((await page('/organization/reused/logs', 'superuser')).logs, []);
    });

    it("lists the user's own namespace log", async () => {
      assert.deepEqual((await page('/user/logs', 'user')).logs.map((l) => [l.kind, l.repository]), [['create_repo', 'mine']]);
      assert.deepEqual((await page('/user/logs', 'member')).logs, []);
      assert.equal((await get('/user/logs', 'anonymous')).statusCode, 401);
      assert.equal((await get('/user/logs', 'robot')).statusCode, 403);
    });
  });
}
