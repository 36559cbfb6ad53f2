/**
 * `quay_organization_mirror` replayed: `get_organization` (GET organization/{org}), GET
 * `organization/{org}/mirror` (404 read as absent), then DELETE for `absent`, a POST of the whole
 * configuration (enabled unless told, public unless told, a start date of now, the TLS and proxy
 * settings, filters, skopeo_timeout) or a PUT of the fields given when they differ from what GET read
 * back (a password always differs; `external_registry_config` is what GET answered with the settings
 * given laid over it), and POST `…/mirror/sync-now` for `force_sync` unless a discovery is running or
 * asked for. Nothing is changed while SYNCING. With sign-in and with a token, on both dialects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, ModuleFailure, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

interface OrgMirrorParams {
  organization: string;
  state?: 'present' | 'absent';
  is_enabled?: boolean;
  external_registry_type?: 'quay' | 'harbor';
  external_registry_url?: string;
  external_namespace?: string;
  external_registry_username?: string;
  external_registry_password?: string;
  robot_username?: string;
  visibility?: 'public' | 'private';
  repository_filters?: string[];
  sync_interval?: string;
  sync_start_date?: string;
  skopeo_timeout?: string;
  verify_tls?: boolean;
  http_proxy?: string;
  https_proxy?: string;
  no_proxy?: string;
  force_sync?: boolean;
}

type Outcome = { changed: boolean; skipped?: boolean };

/** str_period_to_second: `8h`, `30m`, `2d`, `1w` or plain seconds. */
function periodSeconds(value: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(value.trim());
  if (!m) throw new ModuleFailure(`Wrong value for the period: ${value}`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as '' | 's']!;
}

const nowStamp = () => `${new Date().toISOString().slice(0, 19)}Z`;

async function quayOrganizationMirror(m: QuayModule, p: OrgMirrorParams): Promise<Outcome> {
  const interval = p.sync_interval !== undefined ? periodSeconds(p.sync_interval) : 86_400;
  if (interval < 60) throw new ModuleFailure('Wrong value for the `sync_interval` parameter: lower than 60 seconds');
  const timeout = p.skopeo_timeout !== undefined ? periodSeconds(p.skopeo_timeout) : 300;
  if (timeout < 300 || timeout > 43_200) throw new ModuleFailure('Wrong value for the `skopeo_timeout` parameter');
  if (!(await m.getOrganization(p.organization))) {
    if (p.state === 'absent') return { changed: false };
    throw new ModuleFailure(`The ${p.organization} organization does not exist.`);
  }
  const endpoint = `organization/${p.organization}/mirror`;
  const details = await m.get(endpoint);
  if (p.state === 'absent') return { changed: await m.delete(details, endpoint) };

  if (!details) {
    const missing = (['external_registry_type', 'external_registry_url', 'external_namespace', 'robot_username'] as const).filter((k) => p[k] === undefined);
    if (missing.length) throw new ModuleFailure(`missing required arguments: ${missing.join(', ')}`);
    await m.create(endpoint, {
      is_enabled: p.is_enabled ?? true,
      external_registry_type: p.external_registry_type,
      external_registry_url: p.external_registry_url,
      external_namespace: p.external_namespace,
      robot_username: p.robot_username,
      visibility: p.visibility || 'public',
      sync_interval: interval,
      sync_start_date: p.sync_start_date || nowStamp(),
      external_registry_config: {
        verify_tls: p.verify_tls ?? true,
        proxy: { http_proxy: p.http_proxy || null, https_proxy: p.https_proxy || null, no_proxy: p.no_proxy || null },
      },
      repository_filters: p.repository_filters?.length ? p.repository_filters : [],
      skopeo_timeout: timeout,
      external_registry_username: p.external_registry_username || null,
      external_registry_password: p.external_registry_password || null,
    });
    if (p.force_sync) await m.create(`${endpoint}/sync-now`, {});
    return { changed: true };
  }

  const fields: Record<string, unknown> = {};
  if (p.external_registry_password !== undefined) fields.external_registry_password = p.external_registry_password;
  if (p.external_registry_username !== undefined) fields.external_registry_username = p.external_registry_username;
  if (p.sync_start_date !== undefined) fields.sync_start_date = p.sync_start_date;
  if (p.sync_interval !== undefined) fields.sync_interval = interval;
  if (p.skopeo_timeout !== undefined) fields.skopeo_timeout = timeout;
  if (p.robot_username !== undefined) fields.robot_username = p.robot_username;
  if (p.external_registry_url !== undefined) fields.external_registry_url = p.external_registry_url;
  if (p.external_namespace !== undefined) fields.external_namespace = p.external_namespace;
  if (p.is_enabled !== undefined) fields.is_enabled = p.is_enabled;
  if (p.visibility !== undefined) fields.visibility = p.visibility;
  if (p.repository_filters !== undefined) fields.repository_filters = p.repository_filters;
  const config = structuredClone(details.external_registry_config ?? {}) as Record<string, any>;
  if (p.verify_tls !== undefined) config.verify_tls = p.verify_tls;
  for (const key of ['http_proxy', 'https_proxy', 'no_proxy'] as const) {
    if (p[key] === undefined) continue;
    config.proxy ??= {};
    config.proxy[key] = p[key] || null;
  }
  if (Object.keys(config).length) fields.external_registry_config = config;

  let changed = false;
  if (Object.keys(fields).length) {
    if (details.sync_status === 'SYNCING') return { changed: false, skipped: true };
    // need_update compares with !=, which for dicts and lists compares their contents.
    if (Object.keys(fields).some((k) => JSON.stringify(fields[k]) !== JSON.stringify(details[k] ?? null))) {
      await m.put(endpoint, fields);
      changed = true;
    }
  }
  if (p.force_sync && !['SYNCING', 'SYNC_NOW'].includes(details.sync_status)) {
    await m.create(`${endpoint}/sync-now`, {});
    changed = true;
  }
  return { changed };
}

const ORG = 'mirror-org';
const BASE = { organization: ORG, external_registry_type: 'quay', external_registry_url: 'https://203.0.113.10', external_namespace: 'projectquay', robot_username: `${ORG}+syncbot` } as const;

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_organization_mirror replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      await w.a.accounts.createOrganization({ name: ORG, creator: 'admin' });
      await w.a.robots.create(ORG, 'syncbot');
      await w.a.robots.create(ORG, 'other');
      await w.a.accounts.createOrganization({ name: 'busy', creator: 'admin' });
      await w.a.robots.create('busy', 'syncbot');
      await w.pushImage('busy/team/app', 'v1', 'busy');
    });
    after(async () => w.close());

    const run = async (p: Omit<OrgMirrorParams, 'organization'> & { organization?: string }, user?: string) => quayOrganizationMirror(await w.module(user), { organization: ORG, ...p });
    const mirror = () => w.getObject(`organization/${ORG}/mirror`);
    const setStatus = async (status: string) => {
      await w.t.db.db.updateTable('organization_mirrors').set({ sync_status: status }).execute();
    };

    it('reads an organization without a mirror as absent (404); absent of absent changes nothing', async () => {
      assert.equal((await w.raw('GET', `organization/${ORG}/mirror`)).status, 404);
      assert.deepEqual(await run({ state: 'absent' }), { changed: false });
      assert.deepEqual(await run({ state: 'absent', organization: 'nosuchorg' }), { changed: false });
      await assert.rejects(run({ ...BASE, organization: 'nosuchorg' }), /The nosuchorg organization does not exist/);
    });

    it('fails without the parameters a creation needs, with what the API refuses, and in an organization that holds repositories', async () => {
      await assert.rejects(run({ external_registry_url: 'https://203.0.113.10' }), /missing required arguments: external_registry_type, external_namespace, robot_username/);
      await assert.rejects(run({ ...BASE, skopeo_timeout: '2h' }), /7200 is greater than the maximum of 3600/);
      await assert.rejects(run({ ...BASE, robot_username: 'busy+syncbot' }), /Robot account must belong to the organization/);
      await assert.rejects(run({ ...BASE, sync_start_date: '2026-04-25 21:06' }), /Invalid sync_start_date format/);
      await assert.rejects(run({ ...BASE, organization: 'busy', robot_username: 'busy+syncbot' }), /the organization already contains repositories/);
      assert.equal(await mirror(), undefined);
    });

    it('creates the mirror once (enabled, public, now); a second run changes nothing; a password always counts as a change', async () => {
      const p = { ...BASE, repository_filters: ['quay', 'clair*'], sync_interval: '2d', skopeo_timeout: '451', external_registry_username: 'puller', external_registry_password: 'hunter2-pass' };
      assert.deepEqual(await run(p), { changed: true });
      const m = await mirror();
      assert.deepEqual(
        [m.is_enabled, m.external_registry_type, m.external_registry_url, m.external_namespace, m.robot_username, m.visibility, m.repository_filters, m.sync_interval, m.skopeo_timeout, m.external_registry_username, m.has_external_registry_password, m.sync_status],
        [true, 'quay', 'https://203.0.113.10', 'projectquay', `${ORG}+syncbot`, 'public', ['quay', 'clair*'], 172_800, 451, 'puller', true, 'NEVER_RUN'],
      );
      assert.deepEqual(m.external_registry_config, { verify_tls: true, proxy: { http_proxy: null, https_proxy: null, no_proxy: null } });
      assert.deepEqual(m.repo_sync_status_counts, { CANCEL: 0, FAIL: 0, NEVER_RUN: 0, SUCCESS: 0, SYNCING: 0, SYNC_NOW: 0, SKIP: 0 });
      assert.ok(Math.abs(Date.parse(m.sync_start_date) - Date.now()) < 24 * 3600_000, 'the start date defaults to now');
      const { external_registry_password: _password, ...again } = p;
      assert.deepEqual(await run(again), { changed: false });
      assert.deepEqual(await run({ ...again, verify_tls: true, visibility: 'public' }), { changed: false });
      assert.deepEqual(await run(p), { changed: true }, 'a password always counts as a change');
      assert.doesNotMatch(JSON.stringify(await mirror()), /hunter2/);
    });

    it('changes what differs, once: filters, interval, visibility, proxies, TLS, enablement, robot, source', async () => {
      const change = {
        repository_filters: ['redis'],
        sync_interval: '1d',
        visibility: 'private' as const,
        https_proxy: 'http://proxy.corp:3128',
        verify_tls: false,
        is_enabled: false,
        robot_username: `${ORG}+other`,
        external_registry_url: 'https://203.0.113.11',
        external_namespace: 'library',
        sync_start_date: '2026-04-27T13:00:00Z',
      };
      assert.deepEqual(await run(change), { changed: true });
      assert.deepEqual(await run(change), { changed: false });
      const m = await mirror();
      assert.deepEqual(
        [m.repository_filters, m.sync_interval, m.visibility, m.external_registry_config.proxy.https_proxy, m.external_registry_config.verify_tls, m.is_enabled, m.robot_username, m.external_registry_url, m.external_namespace, m.sync_start_date],
        [['redis'], 86_400, 'private', 'http://proxy.corp:3128', false, false, `${ORG}+other`, 'https://203.0.113.11', 'library', '2026-04-27T13:00:00Z'],
      );
      assert.deepEqual(await run({ https_proxy: '' }), { changed: true }, 'an empty proxy removes it');
      assert.equal((await mirror()).external_registry_config.proxy.https_proxy, null);
      assert.deepEqual(await run({ external_registry_username: '', external_registry_password: '' }), { changed: true }, 'empty credentials clear them');
      const cleared = await mirror();
      assert.deepEqual([cleared.external_registry_username, cleared.has_external_registry_password], [null, false]);
    });

    it('force_sync asks for a discovery unless one is running or asked for; nothing changes while SYNCING', async () => {
      assert.deepEqual(await run({ force_sync: true }), { changed: true });
      assert.equal((await mirror()).sync_status, 'SYNC_NOW');
      assert.deepEqual(await run({ force_sync: true }), { changed: false });
      await setStatus('SYNCING');
      // The module always sends external_registry_config back, so while SYNCING it skips even a bare force_sync.
      assert.deepEqual(await run({ force_sync: true }), { changed: false, skipped: true });
      assert.deepEqual(await run({ repository_filters: ['v9'] }), { changed: false, skipped: true });
      assert.deepEqual((await mirror()).repository_filters, ['redis']);
      await setStatus('SUCCESS');
    });

    it('an organization member who is not an admin cannot read or change it (403); an outsider sees no organization', async () => {
      await w.createUser('dev');
      await w.a.teams.createTeam(ORG, 'devs', { role: 'member' });
      await w.a.teams.addMember(ORG, 'devs', 'dev');
      await assert.rejects(run({ force_sync: true }, 'dev'), /HTTP 403/);
      await assert.rejects(quayOrganizationMirror(await w.outsider(), { ...BASE }), /The mirror-org organization does not exist/);
    });

    it('the calls answer with the trailing slash too', async () => {
      assert.equal((await w.raw('GET', `organization/${ORG}/mirror/`)).status, 200);
      assert.equal((await w.raw('PUT', `organization/${ORG}/mirror/`, { sync_interval: 3600 })).status, 200);
      assert.equal((await w.raw('POST', `organization/${ORG}/mirror/sync-now/`, {})).status, 204);
      assert.equal((await w.raw('POST', `organization/${ORG}/mirror/sync-cancel/`, {})).status, 204);
      assert.equal((await w.raw('GET', `organization/${ORG}/mirror/repositories/`)).status, 200);
    });

    it('absent deletes it once', async () => {
      assert.deepEqual(await run({ state: 'absent' }), { changed: true });
      assert.equal(await mirror(), undefined);
      assert.deepEqual(await run({ state: 'absent' }), { changed: false });
    });

    it('creates with force_sync: the discovery is asked for at once', async () => {
      assert.deepEqual(await run({ ...BASE, force_sync: true }), { changed: true });
      assert.equal((await mirror()).sync_status, 'SYNC_NOW');
    });
  });
}
