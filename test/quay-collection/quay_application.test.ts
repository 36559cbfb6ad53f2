/**
 * The collection's `quay_application` module, replayed (plugins/modules/quay_application.py): GET
 * organization/{org}, GET organization/{org}/applications, then POST (create), PUT …/{client_id}
 * (update, rename with new_name) or DELETE …/{client_id} (absent), with the module's change detection
 * (need_update). With user/password sign-in and with a token, on both dialects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, injectTransport, moduleRun, type AuthMode, type QuayClient } from '../helpers/quay-session.js';

interface Params {
  organization: string;
  name: string;
  new_name?: string;
  description?: string;
  application_uri?: string;
  redirect_uri?: string;
  avatar_email?: string;
  state?: 'present' | 'absent';
}

type Result = { failed?: string; changed?: boolean; name?: string; client_id?: string; client_secret?: string | null };

const ok = (status: number) => [200, 201, 204].includes(status);

/** The module's need_update: any new field that differs from the old object. */
const needUpdate = (old: Record<string, unknown> | undefined, fields: Record<string, unknown>) => Object.entries(fields).some(([k, v]) => (old ?? {})[k] !== v);

const exit = (changed: boolean, data: Record<string, any> | undefined): Result => {
  const r: Result = { changed };
  for (const k of ['name', 'client_id', 'client_secret'] as const) if (data && k in data) r[k] = data[k];
  return r;
};

/** The module's main(), call for call. */
async function application(q: QuayClient, p: Params): Promise<Result> {
  const state = p.state ?? 'present';
  const org = await q.api('GET', `organization/${p.organization}`);
  if (org.status === 404) return state === 'absent' ? { changed: false } : { failed: `The ${p.organization} organization does not exist.` };
  assert.equal(org.status, 200, org.raw);
  const list = await q.api('GET', `organization/${p.organization}/applications`);
  assert.equal(list.status, 200, list.raw);
  let app: Record<string, any> | undefined;
  let newApp: Record<string, any> | undefined;
  for (const a of list.json.applications as Array<Record<string, any>>) {
    if (a.name === p.name) app = a;
    else if (a.name === p.new_name) newApp = a;
  }
  if (app && newApp) return { failed: `The ${p.new_name} application (\`new_name') already exists.` };
  if (state === 'absent') {
    const target = newApp ?? app;
    if (!target) return { changed: false };
    const res = await q.api('DELETE', `organization/${p.organization}/applications/${target.client_id}`);
    if (ok(res.status) || res.status === 202) return { changed: true };
    return res.status === 400 || res.status === 404 ? { changed: false } : { failed: res.raw };
  }
  const fields: Record<string, unknown> = {};
  if (p.description !== undefined) fields.description = p.description;
  const from = newApp ?? app;
  if (p.application_uri !== undefined) fields.application_uri = p.application_uri;
  else if (from) fields.application_uri = from.application_uri ?? '';
  if (p.redirect_uri !== undefined) fields.redirect_uri = p.redirect_uri;
  else if (from) fields.redirect_uri = from.redirect_uri ?? '';
  if (p.avatar_email !== undefined) fields.avatar_email = p.avatar_email;
  else if (from?.avatar_email) fields.avatar_email = from.avatar_email;

  const update = async (old: Record<string, any>): Promise<Result> => {
    if (!needUpdate(old, fields)) return exit(false, old);
    const res = await q.api('PUT', `organization/${p.organization}/applications/${old.client_id}`, fields);
    if (!ok(res.status)) return { failed: res.raw };
    return exit(true, res.json);
  };
  const create = async (): Promise<Result> => {
    const res = await q.api('POST', `organization/${p.organization}/applications`, fields);
    if (!ok(res.status)) return { failed: res.raw };
    return exit(true, res.json);
  };
  if (p.new_name) {
    fields.name = p.new_name;
    if (!app) return newApp ? update(newApp) : create();
    return update(app);
  }
  fields.name = p.name;
  return app ? update(app) : create();
}

for (const dialect of DIALECTS) {
  describe(`quay_application (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect);
      const a = t.accounts!;
      await a.accounts.createUser({ name: 'owner', password: 'owner-password' });
      await a.accounts.createUser({ name: 'member', password: 'member-password' });
      for (const mode of AUTH_MODES) {
        await a.accounts.createOrganization({ name: `prod-${mode}`, creator: 'owner' });
        await a.teams.createTeam(`prod-${mode}`, 'readers', { role: 'member' });
        await a.teams.addMember(`prod-${mode}`, 'readers', 'member');
      }
    });
    after(() => t?.close());
    const transport = injectTransport(() => t.app);
    const run = (mode: AuthMode, p: Params, user = 'owner') => moduleRun(mode, transport, user, `${user}-password`, (q) => application(q, p));

    for (const mode of AUTH_MODES) {
      it(`creates, leaves alone, updates, renames and deletes an application (${mode})`, async () => {
        const organization = `prod-${mode}`;
        const created = await run(mode, { organization, name: 'extapp', description: 'External app', redirect_uri: 'https://app.example.com/cb' });
        assert.equal(created.changed, true, JSON.stringify(created));
        assert.equal(created.name, 'extapp');
        assert.match(created.client_id!, /^[A-Z0-9]{20}$/);
        assert.match(created.client_secret!, /^[A-Z0-9]{40}$/);

        const again = await run(mode, { organization, name: 'extapp', description: 'External app', redirect_uri: 'https://app.example.com/cb' });
        assert.deepEqual({ changed: again.changed, client_id: again.client_id }, { changed: false, client_id: created.client_id });
        const minimal = await run(mode, { organization, name: 'extapp' });
        assert.equal(minimal.changed, false, 'fields left out keep their values');

        const changed = await run(mode, { organization, name: 'extapp', description: 'Changed', application_uri: 'https://app.example.com', avatar_email: 'app@example.com' });
        assert.equal(changed.changed, true, JSON.stringify(changed));
        const list = await moduleRun(mode, transport, 'owner', 'owner-password', (q) => q.api('GET', `organization/${organization}/applications`));
        assert.deepEqual(list.json.applications, [
          { name: 'extapp', description: 'Changed', application_uri: 'https://app.example.com', client_id: created.client_id, client_secret: null, redirect_uri: 'https://app.example.com/cb', avatar_email: 'app@example.com' },
        ]);
        assert.equal((await run(mode, { organization, name: 'extapp', description: 'Changed', avatar_email: 'app@example.com' })).changed, false);

        const renamed = await run(mode, { organization, name: 'extapp', new_name: 'extapp2' });
        assert.deepEqual({ changed: renamed.changed, name: renamed.name, client_id: renamed.client_id }, { changed: true, name: 'extapp2', client_id: created.client_id });
        assert.equal((await run(mode, { organization, name: 'extapp', new_name: 'extapp2' })).changed, false, 'renaming again changes nothing');

        assert.equal((await run(mode, { organization, name: 'extapp2', state: 'absent' })).changed, true);
        assert.equal((await run(mode, { organization, name: 'extapp2', state: 'absent' })).changed, false);
        assert.equal((await run(mode, { organization: 'ghost', name: 'x', state: 'absent' })).changed, false);
        assert.match((await run(mode, { organization: 'ghost', name: 'x' })).failed!, /does not exist/);
      });
    }

    it('lets only the organization\'s administrators manage applications, and refuses bad input', async () => {
      await moduleRun('session', transport, 'member', 'member-password', async (q) => {
        assert.equal((await q.api('GET', 'organization/prod-session/applications')).status, 403);
        assert.equal((await q.api('POST', 'organization/prod-session/applications', { name: 'x' })).status, 403);
      });
      await moduleRun('session', transport, 'owner', 'owner-password', async (q) => {
        for (const body of [{}, { name: '' }, { name: 'x'.repeat(300) }, { name: 'x', redirect_uri: 3 }]) {
          const res = await q.api('POST', 'organization/prod-session/applications', body);
          assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.raw}`);
          assert.equal(res.json.error_type, 'invalid_request');
        }
        const first = await q.api('POST', 'organization/prod-session/applications', { name: 'dup' });
        assert.equal(first.status, 200, first.raw);
        assert.equal((await q.api('POST', 'organization/prod-session/applications', { name: 'dup' })).status, 409);
        assert.equal((await q.api('GET', 'organization/prod-session/applications/NOPE')).status, 404);
        assert.equal((await q.api('PUT', 'organization/prod-session/applications/NOPE', { name: 'y' })).status, 404);
        assert.equal((await q.api('DELETE', 'organization/prod-session/applications/NOPE')).status, 404);
        // Another organization's application is not found through this one.
        assert.equal((await q.api('GET', `organization/prod-token/applications/${first.json.client_id}`)).status, 404);
        assert.equal((await q.api('GET', 'organization/ghost/applications')).status, 404);
      });
    });
  });
}
