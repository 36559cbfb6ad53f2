import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld, type Who } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { openApiDocument } from './openapi.js';
import type { ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

type Method = ApiRoute['method'];

/** The document's path of a route, as openapi.ts renders it. */
const docPath = (r: ApiRoute) => `/api/v1${r.path.replace(/:([A-Za-z_]+)\+?/g, '{$1}')}`;

function route(method: Method, path: string): ApiRoute {
  const r = API_ROUTES.find((x) => x.method === method && x.path === path);
  assert.ok(r, `no route ${method} ${path}`);
  return r;
}

describe('OpenAPI paths', () => {
  it('lists every route once, a repository route under {repository} with its name as one path parameter', () => {
    const doc = openApiDocument(API_ROUTES, 'test') as { paths: Record<string, Record<string, { operationId: string; parameters: Array<{ name: string; in: string; schema: { type?: string; description?: string } }> }>> };
    const operations = Object.values(doc.paths).flatMap((p) => Object.values(p));
    assert.equal(operations.length, API_ROUTES.length);
    assert.equal(new Set(operations.map((o) => o.operationId)).size, operations.length);
    const tag = doc.paths['/api/v1/repository/{repository}/tag/{tag}'];
    assert.deepEqual(Object.keys(tag ?? {}).sort(), ['delete', 'put']);
    assert.deepEqual(tag!.put!.parameters.filter((p) => p.in === 'path').map((p) => p.name), ['repository', 'tag']);
    const repository = tag!.put!.parameters.find((p) => p.name === 'repository')!.schema;
    assert.equal(repository.type, 'string');
    assert.match(repository.description ?? '', /%2F/);
    for (const path of Object.keys(doc.paths)) assert.doesNotMatch(path, /[:*+]|\{namespace\}\/\{repository\}/, path);
    assert.ok(doc.paths['/api/v1/repository/{repository}']?.get && doc.paths['/api/v1/repository/{repository}/permissions/user/']?.get);
  });
});

describe('OpenAPI response schemas', () => {
  it('declares a JSON response schema for every route with a body, and none for 204', () => {
    const doc = openApiDocument(API_ROUTES, 'test') as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>> };
    const missing: string[] = [];
    for (const r of API_ROUTES) {
      const status = r.status ?? 200;
      const success = doc.paths[docPath(r)]?.[r.method.toLowerCase()]?.responses[String(status)];
      assert.ok(success, `${r.method} ${r.path}: no ${status} response in the document`);
      if (status === 204) {
        assert.equal(r.response, undefined, `${r.method} ${r.path} is 204 but declares a response`);
        assert.equal(success.content, undefined, `${r.method} ${r.path} is 204 but documents content`);
      } else if (!r.response || !success.content?.['application/json']?.schema) missing.push(`${r.method} ${r.path}`);
    }
    assert.deepEqual(missing, [], `routes without a response schema: ${missing.join(', ')}`);
  });
});

for (const dialect of DIALECTS) {
  describe(`/api/v1 replies match their declared response schemas (${dialect})`, () => {
    let w: ApiWorld;
    before(async () => {
      w = await buildApiWorld(dialect);
    });
    after(async () => w.t.close());

    /** Sends the request, expects the route's success status and parses the reply with its schema. */
    const check = async (who: Who, method: Method, routePath: string, url: string, payload?: object) => {
      const r = route(method, routePath);
      const res = await w.t.app.inject({ method, url: `/api/v1${url}`, headers: w.auth[who], ...(payload === undefined ? {} : { payload }) });
      assert.equal(res.statusCode, r.status ?? 200, `${method} ${url}: ${res.body}`);
      assert.ok(r.response, `${method} ${routePath} has no response schema`);
      return r.response.parse(res.json()) as Record<string, unknown>;
    };

    it('GET /user/', async () => {
      const me = await check('member', 'GET', '/user/', '/user/');
      assert.deepEqual(me.organizations, [{ name: 'orga' }]);
      await check('superuser', 'GET', '/user/', '/user/');
    });

    it('GET /organization/{orgname} for admins, members and superusers', async () => {
      const asAdmin = await check('orgadmin', 'GET', '/organization/:orgname', '/organization/orga');
      assert.equal(typeof asAdmin.email, 'string');
      assert.ok(asAdmin.teams && asAdmin.ordered_teams);
      const asMember = await check('member', 'GET', '/organization/:orgname', '/organization/orga');
      assert.equal(asMember.email, undefined);
      await check('superuser', 'GET', '/organization/:orgname', '/organization/orgb');
      await check('orgadmin', 'GET', '/organization/:orgname/members', '/organization/orga/members');
    });

    it('GET /repository/{repository} and the repository list', async () => {
      const repo = await check('member', 'GET', '/repository/:repository+', '/repository/orga/priv');
      assert.equal(repo.tag_count, 1);
      await check('anonymous', 'GET', '/repository/:repository+', '/repository/orgb/pub');
      await check('member', 'GET', '/repository', '/repository?last_modified=true&public=true&limit=1');
      await check('anonymous', 'GET', '/repository', '/repository');
    });

    it('GET …/tag/, live and with history, and the tag changes', async () => {
      const live = await check('member', 'GET', '/repository/:repository+/tag/', '/repository/orga/priv/tag/');
      assert.equal((live.tags as unknown[]).length, 1);
      const tagPath = '/repository/:repository+/tag/:tag';
      await check('member', 'PUT', tagPath, '/repository/orga/priv/tag/v1', { manifest_digest: w.digests['orga/priv'].v2 });
      const history = await check('member', 'GET', '/repository/:repository+/tag/', '/repository/orga/priv/tag/?onlyActiveTags=false');
      assert.ok((history.tags as Array<{ end_ts?: number }>).some((t) => t.end_ts !== undefined));
      await check('member', 'POST', `${tagPath}/restore`, '/repository/orga/priv/tag/v1/restore', { manifest_digest: w.digests['orga/priv'].v1 });
      await check('member', 'POST', `${tagPath}/expire`, '/repository/orga/priv/tag/v1/expire', { manifest_digest: w.digests['orga/priv'].v2 });
    });

    it('the other account, permission and log routes', async () => {
      await check('orgadmin', 'PUT', '/organization/:orgname/team/:teamname', '/organization/orga/team/ops', { role: 'creator' });
      await check('orgadmin', 'PUT', '/organization/:orgname/team/:teamname/members/:membername', '/organization/orga/team/ops/members/target');
      await check('orgadmin', 'GET', '/organization/:orgname/team/:teamname/members', '/organization/orga/team/ops/members');
      await check('orgadmin', 'GET', '/organization/:orgname/robots', '/organization/orga/robots');
      await check('orgadmin', 'GET', '/organization/:orgname/robots/:robot_shortname', '/organization/orga/robots/ci');
      await check('user', 'PUT', '/user/robots/:robot_shortname', '/user/robots/bot', { description: 'mine' });
      await check('user', 'POST', '/user/robots/:robot_shortname/regenerate', '/user/robots/bot/regenerate');
      await check('user', 'POST', '/user/apitokens', '/user/apitokens', { name: 'ci', scopes: ['repo:read'], expiration: '30d' });
      await check('user', 'GET', '/user/apitokens', '/user/apitokens');
      await check('superuser', 'GET', '/superuser/users/', '/superuser/users/?limit=2');
      await check('superuser', 'POST', '/superuser/users/', '/superuser/users/', { username: 'newbie' });
      await check('superuser', 'PUT', '/superuser/users/:username', '/superuser/users/newbie', { enabled: false });
      await check('orgadmin', 'PUT', '/repository/:repository+/permissions/user/:username', '/repository/orga/priv/permissions/user/target', { role: 'read' });
      await check('orgadmin', 'GET', '/repository/:repository+/permissions/user/', '/repository/orga/priv/permissions/user/');
      await check('orgadmin', 'GET', '/repository/:repository+/permissions/team/', '/repository/orga/priv/permissions/team/');
      await check('orgadmin', 'POST', '/organization/:orgname/prototypes', '/organization/orga/prototypes', { role: 'read', delegate: { kind: 'team', name: 'ops' } });
      await check('orgadmin', 'GET', '/organization/:orgname/prototypes', '/organization/orga/prototypes');
      await check('orgadmin', 'POST', '/repository', '/repository', { namespace: 'orga', repository: 'fresh', visibility: 'private' });
      await check('orgadmin', 'POST', '/repository/:repository+/changevisibility', '/repository/orga/fresh/changevisibility', { visibility: 'public' });
      const logs = await check('orgadmin', 'GET', '/organization/:orgname/logs', '/organization/orga/logs');
      assert.ok((logs.logs as unknown[]).length > 0);
      await check('orgadmin', 'GET', '/repository/:repository+/logs', '/repository/orga/fresh/logs');
      await check('user', 'GET', '/user/logs', '/user/logs');
    });

    it('the lookups and the calls automation makes', async () => {
      const found = await check('member', 'GET', '/entities/:prefix', '/entities/ta?namespace=orga&includeTeams=true&includeOrgs=true');
      assert.ok((found.results as unknown[]).length > 0);
      await check('superuser', 'GET', '/superuser/users/:username', '/superuser/users/target');
      await check('orgadmin', 'PUT', '/repository/:repository+', '/repository/orga/priv', { description: 'described' });
      const starred = await check('member', 'POST', '/user/starred', '/user/starred', { namespace: 'orga', repository: 'priv' });
      assert.deepEqual(starred, { namespace: 'orga', repository: 'priv' });
      await check('member', 'GET', '/user/starred', '/user/starred');
      assert.equal((await check('member', 'GET', '/repository/:repository+', '/repository/orga/priv')).is_starred, true);
      await check('superuser', 'POST', '/messages', '/messages', { message: { content: 'hello', severity: 'info', media_type: 'text/plain' } });
      await check('anonymous', 'GET', '/messages', '/messages');
      const robot = await check('orgadmin', 'GET', '/organization/:orgname/robots/:robot_shortname', '/organization/orga/robots/ci');
      assert.equal(typeof robot.token, 'string');
      const fed = [{ issuer: 'https://issuer.example.com', subject: 'sub' }];
      await check('orgadmin', 'POST', '/organization/:orgname/robots/:robot_shortname/federation', '/organization/orga/robots/ci/federation', fed);
      await check('orgadmin', 'GET', '/organization/:orgname/robots/:robot_shortname/federation', '/organization/orga/robots/ci/federation');
      await check('orgadmin', 'POST', '/organization/:orgname/prototypes', '/organization/orga/prototypes', { role: 'read', delegate: { kind: 'user', name: 'target' }, activating_user: { name: 'member' } });
      await check('orgadmin', 'PUT', '/organization/:orgname/prototypes/:prototypeid', '/organization/orga/prototypes/user:target@member', { role: 'write' });
      await check('superuser', 'PUT', '/superuser/organizations/:orgname', '/superuser/organizations/orgb', { name: 'orgb2' });
    });
  });
}
