/**
 * `quay_config_info` replayed: GET `superuser/config` as a superuser, reading `config` back; other
 * callers are refused with Quay's error shape.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_config_info replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { config: { base_url: 'https://registry.example.test' }, seed: true });
    });
    after(async () => w.close());

    it('returns the settings under Quay\'s keys, with no secret in them', async () => {
      const config = (await w.getObject('superuser/config')).config;
      assert.equal(config.SERVER_HOSTNAME, 'registry.example.test');
      assert.equal(config.PREFERRED_URL_SCHEME, 'https');
      assert.equal(config.FEATURE_PROXY_CACHE, true);
      assert.equal(config.FEATURE_IMMUTABLE_TAGS, true);
      assert.equal(config.FEATURE_SECURITY_SCANNER, false);
      assert.equal(config.FEATURE_IMAGE_PULL_STATS, true);
      assert.deepEqual(config.TAG_EXPIRATION_OPTIONS.slice(0, 1), ['0s']);
      assert.doesNotMatch(JSON.stringify(config), /password|secret|postgres:|sqlite:/i);
    });

    it('refuses anyone but a superuser (401, 403) without a 5xx', async () => {
      assert.equal((await w.raw('GET', 'superuser/config', undefined, null)).status, 401);
      assert.equal((await w.raw('GET', 'superuser/config', undefined, await w.outsider())).status, 403);
      assert.equal((await w.raw('GET', 'superuser/config', undefined, await w.writer())).status, 403);
      assert.equal((await w.raw('PUT', 'superuser/config', { config: {} })).status, 404);
    });
  });
}
