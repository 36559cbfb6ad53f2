/**
 * The routes of tag immutability, manifests, labels, pull statistics and registry information: every
 * reply matches the response schema its route declares (the OpenAPI document is generated from it),
 * and bad input on each of them gets Quay's error shape, never a 5xx.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildQuayWorld, REPO, type QuayWorld } from '../../../test/helpers/quay-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { openApiDocument } from './openapi.js';
import type { ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

const R = '/repository/:repository+';

function route(method: ApiRoute['method'], path: string): ApiRoute {
  const r = API_ROUTES.find((x) => x.method === method && x.path === path);
  assert.ok(r, `no route ${method} ${path}`);
  return r;
}

describe('OpenAPI document of the immutability, manifest and registry routes', () => {
  it('lists them under Quay\'s paths', () => {
    const doc = openApiDocument(API_ROUTES, 'test') as { paths: Record<string, Record<string, unknown>> };
    const expected: Record<string, string[]> = {
      '/api/v1/organization/{orgname}/immutabilitypolicy/': ['get', 'post'],
      '/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}': ['delete', 'get', 'put'],
      '/api/v1/repository/{repository}/immutabilitypolicy/': ['get', 'post'],
      '/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}': ['delete', 'get', 'put'],
      '/api/v1/repository/{repository}/manifest/{digest}': ['get'],
      '/api/v1/repository/{repository}/manifest/{digest}/labels': ['get', 'post'],
      '/api/v1/repository/{repository}/manifest/{digest}/labels/{label_id}': ['delete', 'get'],
      '/api/v1/repository/{repository}/manifest/{digest}/security': ['get'],
      '/api/v1/repository/{repository}/manifest/{digest}/pull_statistics': ['get'],
      '/api/v1/repository/{repository}/tag/{tag}/pull_statistics': ['get'],
      '/api/v1/registry/capabilities': ['get'],
      '/api/v1/superuser/config': ['get'],
    };
    for (const [path, methods] of Object.entries(expected)) assert.deepEqual(Object.keys(doc.paths[path] ?? {}).sort(), methods, path);
  });
});

for (const dialect of DIALECTS) {
  describe(`immutability, manifest and registry routes (${dialect})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, 'token', { seed: true });
    });
    after(async () => w.close());

    const check = async (method: ApiRoute['method'], routePath: string, url: string, body?: unknown, authorization?: string | null) => {
      const r = route(method, routePath);
      const res = await w.raw(method, url, body, authorization);
      assert.equal(res.status, r.status ?? 200, `${method} ${url}: ${JSON.stringify(res.json)}`);
      if (r.status !== 204) r.response!.parse(res.json);
      return res.json;
    };

    it('replies match the declared schemas', async () => {
      const d = w.one.digest;
      const created = await check('POST', '/organization/:orgname/immutabilitypolicy/', 'organization/qc/immutabilitypolicy/', { tagPattern: 'v1' });
      await check('GET', '/organization/:orgname/immutabilitypolicy/', 'organization/qc/immutabilitypolicy/');
      await check('GET', '/organization/:orgname/immutabilitypolicy/:policy_uuid', `organization/qc/immutabilitypolicy/${created.uuid}`);
      await check('PUT', '/organization/:orgname/immutabilitypolicy/:policy_uuid', `organization/qc/immutabilitypolicy/${created.uuid}`, { tagPattern: 'v1$' });
      await check('DELETE', '/organization/:orgname/immutabilitypolicy/:policy_uuid', `organization/qc/immutabilitypolicy/${created.uuid}`);
      const repoPolicy = await check('POST', `${R}/immutabilitypolicy/`, `repository/${REPO}/immutabilitypolicy/`, { tagPattern: 'x', tagPatternMatches: false });
      await check('GET', `${R}/immutabilitypolicy/`, `repository/${REPO}/immutabilitypolicy/`);
      await check('GET', `${R}/immutabilitypolicy/:policy_uuid`, `repository/${REPO}/immutabilitypolicy/${repoPolicy.uuid}`);
      await check('PUT', `${R}/immutabilitypolicy/:policy_uuid`, `repository/${REPO}/immutabilitypolicy/${repoPolicy.uuid}`, { tagPattern: 'y' });
      await check('DELETE', `${R}/immutabilitypolicy/:policy_uuid`, `repository/${REPO}/immutabilitypolicy/${repoPolicy.uuid}`);
      await check('GET', `${R}/manifest/:digest`, `repository/${REPO}/manifest/${d}`);
      const label = await check('POST', `${R}/manifest/:digest/labels`, `repository/${REPO}/manifest/${d}/labels`, { key: 'k', value: 'v', media_type: 'text/plain' });
      await check('GET', `${R}/manifest/:digest/labels`, `repository/${REPO}/manifest/${d}/labels`);
      await check('GET', `${R}/manifest/:digest/labels/:label_id`, `repository/${REPO}/manifest/${d}/labels/${label.label.id}`);
      await check('DELETE', `${R}/manifest/:digest/labels/:label_id`, `repository/${REPO}/manifest/${d}/labels/${label.label.id}`);
      await check('GET', `${R}/manifest/:digest/security`, `repository/${REPO}/manifest/${d}/security`);
      await check('GET', `${R}/manifest/:digest/pull_statistics`, `repository/${REPO}/manifest/${d}/pull_statistics`);
      await check('GET', `${R}/tag/:tag/pull_statistics`, `repository/${REPO}/tag/v1/pull_statistics`);
      await check('GET', '/registry/capabilities', 'registry/capabilities', undefined, null);
      await check('GET', '/superuser/config', 'superuser/config');
      const tags = await check('GET', `${R}/tag/`, `repository/${REPO}/tag/`);
      assert.ok(tags.tags.every((t: { immutable: unknown }) => typeof t.immutable === 'boolean'));
    });

    it('answers bad input on every new route with Quay\'s error shape and no 5xx', async () => {
      const d = w.one.digest;
      const bad: Array<[string, string, unknown?]> = [
        ['GET', `repository/${REPO}/manifest/sha256:xyz`],
        ['GET', `repository/${REPO}/manifest/${d}/labels?filter=${'x'.repeat(300)}`],
        ['POST', `repository/${REPO}/manifest/${d}/labels`, { key: '', value: '' }],
        ['POST', `repository/${REPO}/manifest/${d}/labels`, { key: 'a\u0000b', value: 'x' }],
        ['POST', `repository/${REPO}/manifest/${d}/labels`, ['not', 'an', 'object']],
        ['POST', `repository/${REPO}/manifest/${d}/labels`, { key: 'k'.repeat(2000), value: 'x' }],
        ['GET', `repository/${REPO}/manifest/${d}/labels/${'x'.repeat(200)}`],
        ['DELETE', `repository/${REPO}/manifest/${d}/labels/%ZZ`],
        ['GET', `repository/${REPO}/manifest/${d}/security?raw=sometimes`],
        ['GET', `repository/${REPO}/tag/${'t'.repeat(200)}/pull_statistics`],
        ['POST', 'organization/qc/immutabilitypolicy/', { tagPattern: ['a'] }],
        ['POST', 'organization/qc/immutabilitypolicy/', { tagPattern: '(?<' }],
        ['POST', 'organization/qc/immutabilitypolicy/', 'just a string'],
        ['PUT', `organization/qc/immutabilitypolicy/${'u'.repeat(200)}`, { tagPattern: 'x' }],
        ['POST', `repository/${REPO}/immutabilitypolicy/`, { tagPattern: 'x', tagPatternMatches: 'false' }],
        ['GET', 'organization/x/immutabilitypolicy/'],
        ['PUT', `repository/${REPO}/tag/v1`, { immutable: 1 }],
        ['PUT', `repository/${REPO}/tag/v1`, { immutable: true, expiration: -5 }],
      ];
      for (const [method, url, body] of bad) {
        const res = await w.raw(method, url, body);
        assert.ok(res.status >= 400 && res.status < 500, `${method} ${url}: ${res.status} ${JSON.stringify(res.json)}`);
      }
    });
  });
}
