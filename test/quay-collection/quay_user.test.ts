/**
 * The collection's `quay_user` module, replayed call by call (quay-module.ts): it looks the user
 * up with GET superuser/users/{username} (404 = absent), creates it with POST superuser/users/, changes
 * it with PUT superuser/users/{username}, and deletes it (after re-enabling and demoting it) with DELETE.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

interface UserParams {
  username: string;
  email?: string;
  password?: string;
  enabled?: boolean;
  superuser?: boolean;
  state?: 'present' | 'absent';
}

/** What the module does with these parameters; `changed` as it reports it, `warned` for a superuser it leaves alone. */
async function quayUser(m: QuayModule, p: UserParams): Promise<{ changed: boolean; warned?: boolean }> {
  const path = `superuser/users/${p.username}`;
  let details = await m.get(path);
  if (details?.super_user) return { changed: false, warned: true };
  if (p.state === 'absent') {
    if (details) await m.put(path, { enabled: true, superuser: false }).catch(() => undefined);
    return { changed: await m.delete(details, path) };
  }
  let created = false;
  if (details === null) {
    const fields: Record<string, unknown> = { username: p.username };
    if (p.email) fields.email = p.email;
    await m.create('superuser/users/', fields);
    details = { ...fields, enabled: true };
    created = true;
  }
  const fields: Record<string, unknown> = p.superuser === undefined ? {} : { superuser: p.superuser };
  if (p.enabled !== undefined) fields.enabled = p.enabled;
  if (p.email) fields.email = p.email;
  if (p.password) fields.password = p.password;
  const updated = await m.update(details, path, fields);
  return { changed: created || updated };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_user against Wharf (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
    });
    after(() => w?.close());

    it('creates a user, changes nothing on a second run, then updates email, enabled and password', async () => {
      const params: UserParams = { username: 'jdoe', email: 'jdoe@example.com', enabled: true };
      let m = await w.module();
      assert.deepEqual(await quayUser(m, params), { changed: true });
      // The fields just sent equal those it assumes after creating (enabled): no PUT follows.
      assert.deepEqual(m.calls.map((c) => `${c.method} ${c.path} ${c.status}`), ['GET /api/v1/superuser/users/jdoe 404', 'POST /api/v1/superuser/users/ 201']);

      m = await w.module();
      assert.deepEqual(await quayUser(m, params), { changed: false });
      assert.deepEqual(m.calls.map((c) => `${c.method} ${c.status}`), ['GET 200'], 'a second present run only reads');

      assert.deepEqual(await quayUser(await w.module(), { username: 'jdoe', email: 'john@example.com', enabled: false }), { changed: true });
      const user = await w.a.accounts.getUser('jdoe');
      assert.equal(user?.email, 'john@example.com');
      assert.equal(user?.enabled, false);
      assert.deepEqual(await quayUser(await w.module(), { username: 'jdoe', email: 'john@example.com', enabled: false }), { changed: false });

      // A password is always sent again (the module cannot compare it) and then works.
      assert.deepEqual(await quayUser(await w.module(), { username: 'jdoe', password: 'S3cr3t-pass', enabled: true }), { changed: true });
      assert.ok(await w.a.accounts.verifyPassword('jdoe', 'S3cr3t-pass'));
    });

    it('reads back the fields the module compares (super_user, enabled, email) and leaves superusers alone', async () => {
      const m = await w.module();
      const shown = await m.get('superuser/users/admin');
      assert.equal(shown?.super_user, true);
      assert.equal(shown?.superuser, true);
      assert.equal(shown?.username, 'admin');
      assert.deepEqual(await quayUser(await w.module(), { username: 'admin', email: 'x@example.com' }), { changed: false, warned: true });
    });

    it('makes and unmakes superusers through the same PUT', async () => {
      await w.a.accounts.createUser({ name: 'boss', password: 'boss-password-1' });
      assert.deepEqual(await quayUser(await w.module(), { username: 'boss', superuser: true }), { changed: true });
      assert.equal((await w.a.accounts.getUser('boss'))?.superuser, true);
    });

    it('deletes a user; a second absent run changes nothing', async () => {
      await w.a.accounts.createUser({ name: 'gone', password: 'gone-password-1' });
      await w.a.accounts.setEnabled('gone', false);
      const m = await w.module();
      assert.deepEqual(await quayUser(m, { username: 'gone', state: 'absent' }), { changed: true });
      assert.deepEqual(m.calls.map((c) => `${c.method} ${c.status}`), ['GET 200', 'PUT 200', 'DELETE 204'], 'the DELETE carries Content-Type: application/json and no body');
      assert.equal(await w.a.accounts.getUser('gone'), undefined);
      const again = await w.module();
      assert.deepEqual(await quayUser(again, { username: 'gone', state: 'absent' }), { changed: false });
      assert.deepEqual(again.calls.map((c) => `${c.method} ${c.status}`), ['GET 404']);
    });

    it('answers bad input on GET superuser/users/{username} without a 5xx, in Quay’s error shape', async () => {
      const m = await w.module();
      for (const name of ['NoSuchUser', 'a'.repeat(300), '%00x', 'x%2Fy', 'robot+name']) {
        const res = await m.request('GET', `superuser/users/${name}`, { okErrorCodes: [400, 404, 414] });
        assert.ok([400, 404, 414].includes(res.status), `${name}: ${res.status}`);
        assert.equal(typeof res.json.detail, 'string');
        assert.equal(res.json.status, res.status);
      }
      const member = await w.a.accounts.createUser({ name: 'plain', password: 'plain-password-1' });
      const asPlain = await w.module(member.name);
      await assert.rejects(asPlain.get('superuser/users/admin'), /HTTP 403/);
    });
  });
}
