/**
 * `quay_repository_mirror` replayed: `split_name` (GET user/, GET organization/{ns}), GET
 * `repository/{namespace}/{repository}/mirror` (404 and 403 read as absent), then a POST of the whole
 * configuration (is_enabled false unless given, a start date of now, skopeo_timeout_interval) or a PUT
 * of the fields given when they differ from what GET read back (a password always differs; the module
 * sends `unsigned_images` at the top level, where Quay ignores it), and POST `…/mirror/sync-now` for
 * `force_sync` unless a sync is running or asked for. A configuration is not changed while SYNCING.
 * On the nested repository `qc/team/app`, with sign-in and with a token, on both dialects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, ModuleFailure, REPO, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

interface MirrorParams {
  name: string;
  is_enabled?: boolean;
  force_sync?: boolean;
  robot_username?: string;
  external_reference?: string;
  external_registry_username?: string;
  external_registry_password?: string;
  verify_tls?: boolean;
  image_tags?: string[];
  sync_interval?: string;
  sync_start_date?: string;
  skopeo_timeout?: string;
  http_proxy?: string;
  https_proxy?: string;
  no_proxy?: string;
  unsigned_images?: boolean;
}

type Outcome = { changed: boolean; skipped?: boolean };

/** str_period_to_second: `8h`, `30m`, `2d`, `1w` or plain seconds. */
function periodSeconds(value: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(value.trim());
  if (!m) throw new ModuleFailure(`Wrong value for the period: ${value}`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as '' | 's']!;
}

const nowStamp = () => `${new Date().toISOString().slice(0, 19)}Z`;

async function quayRepositoryMirror(m: QuayModule, p: MirrorParams): Promise<Outcome> {
  const interval = p.sync_interval !== undefined ? periodSeconds(p.sync_interval) : 86_400;
  const timeout = p.skopeo_timeout !== undefined ? periodSeconds(p.skopeo_timeout) : 300;
  if (timeout < 300 || timeout > 43_200) throw new ModuleFailure('Wrong value for the `skopeo_timeout` parameter');
  const split = await m.splitName(p.name.replace(/^\/+|\/+$/g, ''), 'present');
  if (split === 'absent') return { changed: false };
  const full = `${split.namespace}/${split.short}`;
  const endpoint = `repository/${full}/mirror`;
  const details = await m.get(endpoint, { okErrorCodes: [404, 403] });

  if (!details) {
    const missing = (['external_reference', 'robot_username', 'image_tags'] as const).filter((k) => p[k] === undefined);
    if (missing.length) throw new ModuleFailure(`missing required arguments: ${missing.join(', ')}`);
    const fields: Record<string, unknown> = {
      is_enabled: p.is_enabled ?? false,
      robot_username: p.robot_username,
      external_reference: p.external_reference,
      root_rule: { rule_kind: 'tag_glob_csv', rule_value: p.image_tags },
      sync_interval: interval,
      sync_start_date: p.sync_start_date || nowStamp(),
      skopeo_timeout_interval: timeout,
      external_registry_username: p.external_registry_username || null,
      external_registry_config: {
        verify_tls: p.verify_tls ?? true,
        proxy: { http_proxy: p.http_proxy || null, https_proxy: p.https_proxy || null, no_proxy: p.no_proxy || null },
        unsigned_images: p.unsigned_images ?? false,
      },
    };
    if (p.external_registry_password) fields.external_registry_password = p.external_registry_password;
    try {
      await m.create(endpoint, fields);
    } catch (err) {
      // Quay before 3.15 refuses skopeo_timeout_interval: the module tries once more without it.
      if (!(err instanceof ModuleFailure)) throw err;
      delete fields.skopeo_timeout_interval;
      await m.create(endpoint, fields);
    }
    if (p.force_sync) await m.create(`${endpoint}/sync-now`, {});
    return { changed: true };
  }

  const fields: Record<string, unknown> = {};
  if (p.unsigned_images !== undefined) fields.unsigned_images = p.unsigned_images;
  if (p.external_registry_password !== undefined) fields.external_registry_password = p.external_registry_password;
  if (p.external_registry_username !== undefined) fields.external_registry_username = p.external_registry_username;
  if (p.sync_start_date !== undefined) fields.sync_start_date = p.sync_start_date;
  if (p.sync_interval !== undefined) fields.sync_interval = interval;
  if (p.skopeo_timeout !== undefined) fields.skopeo_timeout_interval = timeout;
  if (p.robot_username !== undefined) fields.robot_username = p.robot_username;
  if (p.external_reference !== undefined) fields.external_reference = p.external_reference;
  if (p.is_enabled !== undefined) fields.is_enabled = p.is_enabled;
  if (p.image_tags !== undefined) fields.root_rule = { rule_kind: 'tag_glob_csv', rule_value: p.image_tags };
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
    // need_update compares with ==, which for dicts and lists compares their contents.
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

const SOURCE = '203.0.113.10/projectquay/quay';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_repository_mirror replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
      await w.a.robots.create('qc', 'mirrorbot');
      await w.a.robots.create('qc', 'other');
    });
    after(async () => w.close());

    const run = async (p: Omit<MirrorParams, 'name'> & { name?: string }) => quayRepositoryMirror(await w.module(), { name: REPO, ...p });
    const mirror = () => w.getObject(`repository/${REPO}/mirror`);
    const setStatus = async (status: string) => {
      const repo = await w.t.registry.repositories.details(REPO as never);
      await w.t.db.db.updateTable('repository_mirrors').set({ sync_status: status }).where('repository_id', '=', repo!.id).execute();
    };

    it('reads a repository without a mirror as absent (404)', async () => {
      assert.equal((await w.raw('GET', `repository/${REPO}/mirror`)).status, 404);
      assert.equal(await mirror(), undefined);
    });

    it('fails without the parameters a creation needs, and for a repository that does not exist', async () => {
      await assert.rejects(run({ external_reference: SOURCE }), /missing required arguments: robot_username, image_tags/);
      await assert.rejects(run({ name: 'qc/team/none', external_reference: SOURCE, robot_username: 'qc+mirrorbot', image_tags: ['latest'] }), ModuleFailure);
      assert.equal(await w.t.registry.repositories.details('qc/team/none' as never), undefined);
    });

    it('creates the mirror once (disabled unless asked); a second run changes nothing', async () => {
      const p = { external_reference: SOURCE, robot_username: 'qc+mirrorbot', image_tags: ['latest', 'v3.*'], sync_interval: '8h', external_registry_username: 'puller', external_registry_password: 'hunter2-pass' };
      assert.deepEqual(await run(p), { changed: true });
      const m = await mirror();
      assert.deepEqual(
        [m.is_enabled, m.external_reference, m.robot_username, m.root_rule.rule_value, m.sync_interval, m.skopeo_timeout_interval, m.external_registry_username, m.sync_status],
        [false, SOURCE, 'qc+mirrorbot', ['latest', 'v3.*'], 28_800, 300, 'puller', 'NEVER_RUN'],
      );
      assert.deepEqual(m.external_registry_config, { verify_tls: true, unsigned_images: false, proxy: { http_proxy: null, https_proxy: null, no_proxy: null } });
      assert.equal((await w.t.registry.repositories.details(REPO as never))!.state, 'MIRROR');
      const { external_registry_password: _password, ...again } = p;
      assert.deepEqual(await run(again), { changed: false });
      assert.deepEqual(await run({ ...again, verify_tls: true }), { changed: false });
      assert.deepEqual(await run(p), { changed: true }, 'a password always counts as a change');
      assert.doesNotMatch(JSON.stringify(await mirror()), /hunter2/);
    });

    it('changes what differs, once: tags, interval, proxies, TLS, enablement, robot', async () => {
      const change = { image_tags: ['latest'], sync_interval: '1d', https_proxy: 'http://proxy.corp:3128', verify_tls: false, is_enabled: true, robot_username: 'qc+other' };
      assert.deepEqual(await run(change), { changed: true });
      assert.deepEqual(await run(change), { changed: false });
      const m = await mirror();
      assert.deepEqual([m.root_rule.rule_value, m.sync_interval, m.external_registry_config.proxy.https_proxy, m.external_registry_config.verify_tls, m.is_enabled, m.robot_username], [['latest'], 86_400, 'http://proxy.corp:3128', false, true, 'qc+other']);
      assert.deepEqual(await run({ https_proxy: '' }), { changed: true }, 'an empty proxy removes it');
      assert.equal((await mirror()).external_registry_config.proxy.https_proxy, null);
      assert.deepEqual(await run({ unsigned_images: true }), { changed: true }, 'sent at the top level: Quay and Wharf ignore it');
      assert.equal((await mirror()).external_registry_config.unsigned_images, false);
    });

    it('force_sync asks for a sync unless one is running or asked for; nothing changes while SYNCING', async () => {
      assert.deepEqual(await run({ force_sync: true }), { changed: true });
      assert.equal((await mirror()).sync_status, 'SYNC_NOW');
      assert.deepEqual(await run({ force_sync: true }), { changed: false });
      await setStatus('SYNCING');
      // The module always sends external_registry_config back, so while SYNCING it skips even a bare force_sync.
      assert.deepEqual(await run({ force_sync: true }), { changed: false, skipped: true });
      assert.deepEqual(await run({ image_tags: ['v9'] }), { changed: false, skipped: true });
      assert.deepEqual((await mirror()).root_rule.rule_value, ['latest']);
      await setStatus('SUCCESS');
    });

    it('the calls answer with the trailing slash too, and with the name encoded', async () => {
      assert.equal((await w.raw('GET', `repository/${REPO}/mirror/`)).status, 200);
      assert.equal((await w.raw('GET', 'repository/qc%2Fteam%2Fapp/mirror')).status, 200);
      assert.equal((await w.raw('PUT', `repository/${REPO}/mirror/`, { sync_interval: 3600 })).status, 201);
      assert.equal((await w.raw('POST', `repository/${REPO}/mirror/sync-now/`, {})).status, 204);
      assert.equal((await w.raw('POST', `repository/${REPO}/mirror/sync-cancel/`, {})).status, 204);
    });

    it('refuses bad input, writers and strangers with Quay\'s error shape and no 5xx', async () => {
      const base = `repository/${REPO}/mirror`;
      for (const body of [{ sync_interval: 0 }, { sync_interval: 'daily' }, { sync_start_date: '2020-01-01 00:00:00' }, { root_rule: { rule_kind: 'tag_glob_csv', rule_value: [] } }, { external_reference: 'example.com' }, { robot_username: 'qc+nobody' }, { external_registry_password: 'x' }, { skopeo_timeout_interval: 10 }]) {
        assert.equal((await w.raw('PUT', base, body)).status, 400, JSON.stringify(body));
      }
      const again = await w.raw('POST', base, { external_reference: SOURCE, sync_interval: 60, sync_start_date: nowStamp(), root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['x'] }, robot_username: 'qc+mirrorbot' });
      assert.equal(again.status, 409);
      assert.equal(again.json.detail, `Mirror configuration already exits for repository ${REPO}`);
      assert.equal((await w.raw('GET', base, undefined, await w.writer())).status, 403);
      assert.equal((await w.raw('GET', base, undefined, await w.outsider())).status, 404);
      assert.equal((await w.raw('GET', base, undefined, null)).status, 401);
      const outsider = await w.outsider();
      await assert.rejects(quayRepositoryMirror(outsider, { name: REPO, image_tags: ['x'] }), /namespace does not exist|not the owner/);
    });

    it('DELETE (Wharf\'s addition) ends the mirroring; the module then creates it again', async () => {
      assert.equal(await w.remove(`repository/${REPO}/mirror`), 'changed');
      assert.equal(await w.remove(`repository/${REPO}/mirror`), 'unchanged');
      assert.equal((await w.t.registry.repositories.details(REPO as never))!.state, 'NORMAL');
      assert.deepEqual(await run({ external_reference: SOURCE, robot_username: 'qc+mirrorbot', image_tags: ['latest'], is_enabled: true }), { changed: true });
      assert.equal((await mirror()).is_enabled, true);
    });
  });
}
