import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { repositorySubPath } from './route.js';
import { API_ROUTE_TABLE } from './route-table.js';
import { API_ROUTES } from './routes.js';

const line = (method: string, path: string) => `  ['${method}', '${path}'],`;

describe('API_ROUTE_TABLE', () => {
  it('names every route of API_ROUTES outside /repository/, once, and nothing else', () => {
    const declared = API_ROUTES.filter((r) => repositorySubPath(r) === undefined).map((r) => line(r.method, r.path));
    const listed = API_ROUTE_TABLE.map(([method, path]) => line(method, path));
    assert.equal(new Set(listed).size, listed.length, 'a route is listed twice');
    const missing = declared.filter((l) => !listed.includes(l));
    const extra = listed.filter((l) => !declared.includes(l));
    assert.deepEqual(missing, [], `add to route-table.ts:\n${missing.join('\n')}`);
    assert.deepEqual(extra, [], `no such route in API_ROUTES; remove from route-table.ts:\n${extra.join('\n')}`);
  });

  it('lists no route below /repository/ (the RepositoryRouter serves those)', () => {
    assert.deepEqual(API_ROUTE_TABLE.filter(([, path]) => repositorySubPath({ path }) !== undefined), []);
  });
});
