/**
 * `quay_capabilities_info` replayed: GET `registry/capabilities` without authentication (the module
 * signs in with nothing), read back as Quay documents it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_capabilities_info replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    it('answers anonymous callers with Quay\'s capabilities document', async () => {
      const res = await w.raw('GET', 'registry/capabilities', undefined, null);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { sparse_manifests: { supported: false, required_architectures: [], optional_architectures_allowed: false }, mirror_architectures: ['386', 'amd64', 'arm', 'arm64', 'ppc64le', 'riscv64', 's390x'] });
      assert.deepEqual((await w.raw('GET', 'registry/capabilities/')).json, res.json, 'with a trailing slash and a token too');
    });

    it('refuses other methods and a bad token without a 5xx', async () => {
      assert.equal((await w.raw('POST', 'registry/capabilities', {})).status, 404);
      assert.equal((await w.raw('GET', 'registry/capabilities', undefined, 'Bearer not-a-token')).status, 401);
    });
  });
}
