import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ApiError } from './errors.js';
import { RepositoryRouter } from './repository-router.js';
import { defineRoute, REPOSITORY_PATH, type ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

const router = new RepositoryRouter(API_ROUTES);

/** `METHOD path` of the route `method` reaches on `path` (below /repository/), with its parameters. */
function resolve(method: string, path: string): [string, Record<string, string>] {
  const { route, params } = router.resolve(method, path);
  return [`${route.method} ${route.path.slice(REPOSITORY_PATH.length) || '/'}`, params];
}

function refusal(method: string, path: string): { status: number; allow?: string } {
  try {
    router.resolve(method, path);
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    return { status: err.status, ...(err.headers.Allow ? { allow: err.headers.Allow } : {}) };
  }
  assert.fail(`${method} ${path} resolved`);
}

describe('RepositoryRouter', () => {
  it('finds the name of two to five components, raw or with %2F, with or without the trailing slash', () => {
    for (const name of ['qc/app', 'qc/lib/app', 'qc/a/b/app', 'qc/a/b/c/app']) {
      const encoded = encodeURIComponent(name);
      const afterNamespace = `qc/${encodeURIComponent(name.slice(3))}`;
      for (const n of [name, encoded, afterNamespace]) {
        assert.deepEqual(resolve('GET', `${n}/tag/`), ['GET /tag/', { repository: name }]);
        assert.deepEqual(resolve('GET', `${n}/tag`), ['GET /tag/', { repository: name }]);
        assert.deepEqual(resolve('DELETE', `${n}/tag/v1`), ['DELETE /tag/:tag', { repository: name, tag: 'v1' }]);
        assert.deepEqual(resolve('DELETE', `${n}/tag/v1/`), ['DELETE /tag/:tag', { repository: name, tag: 'v1' }]);
        assert.deepEqual(resolve('PUT', `${n}/permissions/user/acme+ci`), ['PUT /permissions/user/:username', { repository: name, username: 'acme+ci' }]);
        assert.deepEqual(resolve('GET', `${n}/permissions/team/`), ['GET /permissions/team/', { repository: name }]);
        assert.deepEqual(resolve('GET', `${n}/logs`), ['GET /logs', { repository: name }]);
        assert.deepEqual(resolve('GET', n), ['GET /', { repository: name }]);
        assert.deepEqual(resolve('HEAD', `${n}/`), ['GET /', { repository: name }]);
        assert.deepEqual(resolve('DELETE', n), ['DELETE /', { repository: name }]);
      }
    }
  });

  it('reads a path that could also spell a deeper repository as the sub-resource; %2F names the deeper one', () => {
    assert.deepEqual(resolve('DELETE', 'qc/lib/app/tag/v1'), ['DELETE /tag/:tag', { repository: 'qc/lib/app', tag: 'v1' }]);
    assert.deepEqual(resolve('DELETE', 'qc%2Flib%2Fapp%2Ftag%2Fv1'), ['DELETE /', { repository: 'qc/lib/app/tag/v1' }]);
    assert.deepEqual(resolve('DELETE', 'qc/lib%2Fapp%2Ftag%2Fv1'), ['DELETE /', { repository: 'qc/lib/app/tag/v1' }]);
    // The tags of a repository whose name ends in `tag` need %2F: raw, the path names tag `tag` of its parent.
    assert.deepEqual(refusal('GET', 'qc/lib/app/tag/tag/'), { status: 405, allow: 'PUT, DELETE' });
    assert.deepEqual(resolve('GET', 'qc/lib/app%2Ftag/tag/'), ['GET /tag/', { repository: 'qc/lib/app/tag' }]);
    // The longest sub-resource wins: the permission of user `tag`, not the tags of qc/lib/app/permissions/user.
    assert.deepEqual(resolve('GET', 'qc/lib/app/permissions/user/tag'), ['GET /permissions/user/:username', { repository: 'qc/lib/app', username: 'tag' }]);
    assert.deepEqual(resolve('POST', 'qc/lib/app/tag/v1/restore'), ['POST /tag/:tag/restore', { repository: 'qc/lib/app', tag: 'v1' }]);
    // A parameter takes one segment, whatever it holds; its schema judges it.
    assert.deepEqual(resolve('DELETE', 'qc/lib/app/tag/v1%2Fx'), ['DELETE /tag/:tag', { repository: 'qc/lib/app', tag: 'v1/x' }]);
    // Words of sub-resources inside a name do not matter.
    assert.deepEqual(resolve('GET', 'qc/tag/logs/app/logs'), ['GET /logs', { repository: 'qc/tag/logs/app' }]);
    assert.deepEqual(resolve('DELETE', 'qc/tag/logs/app'), ['DELETE /', { repository: 'qc/tag/logs/app' }]);
  });

  it('reads a sub-resource only when a name of two components is left before it', () => {
    assert.deepEqual(resolve('DELETE', 'qc/tag/v1'), ['DELETE /', { repository: 'qc/tag/v1' }]);
    assert.deepEqual(resolve('GET', 'qc/tag/'), ['GET /', { repository: 'qc/tag' }]);
    assert.deepEqual(resolve('GET', 'qc%2Fapp/tag/'), ['GET /tag/', { repository: 'qc/app' }]);
  });

  it('answers 405 with Allow when the sub-resource has no route for the method, 404 without a name, 400 for bad encoding', () => {
    assert.deepEqual(refusal('GET', 'qc/lib/app/tag/v1'), { status: 405, allow: 'PUT, DELETE' });
    assert.deepEqual(refusal('POST', 'qc/lib/app'), { status: 405, allow: 'GET, PUT, DELETE' });
    assert.deepEqual(refusal('DELETE', 'qc/lib/app/changevisibility'), { status: 405, allow: 'POST' });
    assert.deepEqual(refusal('PATCH', 'qc/lib/app/tag/'), { status: 405, allow: 'GET' });
    assert.deepEqual(refusal('GET', 'qc'), { status: 404 });
    assert.deepEqual(refusal('GET', 'qc/'), { status: 404 });
    assert.deepEqual(refusal('GET', ''), { status: 404 });
    assert.deepEqual(refusal('GET', 'qc/app%ZZ/tag/'), { status: 400 });
  });

  it('refuses a table where one path could reach two routes, or a route that does not parse the name', () => {
    const route = (method: ApiRoute['method'], path: string, params: z.ZodType = z.object({ repository: z.string() })) =>
      defineRoute({ method, path, summary: '', tag: 'test', params: params as z.ZodType<Record<string, string>>, handler: async () => undefined });
    assert.throws(() => new RepositoryRouter([route('GET', `${REPOSITORY_PATH}/a/:x`), route('GET', `${REPOSITORY_PATH}/a/b`)]), /could both fit/);
    assert.throws(() => new RepositoryRouter([route('GET', `${REPOSITORY_PATH}/a/:x`), route('PUT', `${REPOSITORY_PATH}/:y/b`)]), /must start with a word/);
    assert.throws(() => new RepositoryRouter([route('GET', `${REPOSITORY_PATH}/a/`), route('GET', `${REPOSITORY_PATH}/a`)]), /declared twice/);
    assert.throws(() => new RepositoryRouter([route('GET', `${REPOSITORY_PATH}/a`, z.object({}))]), /must parse `repository`/);
    assert.doesNotThrow(() => new RepositoryRouter([route('GET', `${REPOSITORY_PATH}/a/:x`), route('GET', `${REPOSITORY_PATH}/b/:x`), route('PUT', `${REPOSITORY_PATH}/a/:y`)]));
  });
});
