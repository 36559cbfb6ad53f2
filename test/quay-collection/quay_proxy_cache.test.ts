/**
 * `quay_proxy_cache` replayed: GET `organization/{org}/organization` then `organization/{org}/proxycache`
 * (empty values when none), DELETE and POST of the whole configuration as the module decides them
 * (it never PUTs: a change is a delete and a create), reading back `upstream_registry`, `insecure` and
 * `expiration_s` for idempotency.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

interface ProxyParams {
  organization: string;
  registry?: string;
  username?: string;
  password?: string;
  insecure?: boolean;
  /** Seconds (the module converts "2h" and the like before its calls). */
  expiration?: number;
  state?: 'present' | 'absent';
}

async function quayProxyCache(w: QuayWorld, p: ProxyParams): Promise<{ changed: boolean }> {
  const registry = p.registry ?? 'quay.io';
  const expiration = p.expiration ?? 86_400;
  if (!(await w.getObject(`organization/${p.organization}`))) {
    assert.equal(p.state, 'absent', 'the module fails when the organization does not exist');
    return { changed: false };
  }
  const cache = await w.getObject(`organization/${p.organization}/proxycache`);
  if (p.state === 'absent') {
    if (!cache || !cache.upstream_registry) return { changed: false };
    return { changed: (await w.remove(`organization/${p.organization}/proxycache`)) === 'changed' };
  }
  if (
    cache &&
    p.username === undefined &&
    p.password === undefined &&
    registry === cache.upstream_registry &&
    (p.insecure === undefined || p.insecure === cache.insecure) &&
    (p.expiration === undefined || expiration === cache.expiration_s)
  ) {
    return { changed: false };
  }
  if (cache) await w.remove(`organization/${p.organization}/proxycache`);
  await w.create(`organization/${p.organization}/proxycache`, {
    org_name: p.organization,
    expiration_s: expiration,
    insecure: p.insecure ?? false,
    upstream_registry: registry,
    upstream_registry_username: p.username ?? null,
    upstream_registry_password: p.password ?? null,
  });
  return { changed: true };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_proxy_cache replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    const upstream = '127.0.0.1:1';
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { config: { 'proxy_cache.allow_private_upstreams': ['127.0.0.1'], 'proxy_cache.secret_key': randomBytes(32).toString('base64') }, seed: true });
      await w.t.accounts!.accounts.createOrganization({ name: 'cache', creator: 'admin' });
    });
    after(async () => w.close());

    it('reads an organization without a cache as empty values', async () => {
      const cache = await w.getObject('organization/cache/proxycache');
      assert.equal(cache.upstream_registry, '');
      assert.equal((await w.raw('DELETE', 'organization/cache/proxycache')).status, 404);
    });

    it('creates the cache once; a second run changes nothing', async () => {
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', registry: upstream, insecure: true, expiration: 7200 }), { changed: true });
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', registry: upstream, insecure: true, expiration: 7200 }), { changed: false });
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', registry: upstream }), { changed: false }, 'unset options are not compared');
      const cache = await w.getObject('organization/cache/proxycache');
      assert.deepEqual([cache.upstream_registry, cache.insecure, cache.expiration_s, cache.has_credentials], [upstream, true, 7200, false]);
    });

    it('replaces the cache to change it, and with credentials (never shown back)', async () => {
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', registry: upstream, insecure: true, expiration: 3600 }), { changed: true });
      assert.equal((await w.getObject('organization/cache/proxycache')).expiration_s, 3600);
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', registry: upstream, username: 'puller', password: 'hunter2-secret' }), { changed: true });
      const cache = await w.raw('GET', 'organization/cache/proxycache');
      assert.equal(cache.json.has_credentials, true);
      assert.doesNotMatch(JSON.stringify(cache.json), /hunter2/);
    });

    it('deletes the cache once', async () => {
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', state: 'absent' }), { changed: true });
      assert.deepEqual(await quayProxyCache(w, { organization: 'cache', state: 'absent' }), { changed: false });
      assert.deepEqual(await quayProxyCache(w, { organization: 'nosuchorg', state: 'absent' }), { changed: false });
    });

    it('refuses bad input and a second create with Quay\'s error shape, no 5xx', async () => {
      for (const body of [{}, { upstream_registry: 7 }, { upstream_registry: upstream, expiration_s: 'soon' }, { upstream_registry: upstream, insecure: 'maybe' }]) {
        assert.equal((await w.raw('POST', 'organization/cache/proxycache', body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('POST', 'organization/cache/proxycache', { upstream_registry: upstream })).status, 201);
      assert.equal((await w.raw('POST', 'organization/cache/proxycache', { upstream_registry: upstream })).status, 400);
      assert.equal((await w.raw('GET', 'organization/cache/proxycache', undefined, await w.outsider())).status, 404);
    });

    it('refuses to make an organization with immutable tags a proxy cache (as Quay)', async () => {
      await w.update('repository/qc/team/app/tag/v1', { immutable: true });
      const res = await w.raw('POST', 'organization/qc/proxycache', { upstream_registry: upstream });
      assert.equal(res.status, 400);
      assert.match(res.json.detail, /immutable tags exist/);
    });
  });
}
