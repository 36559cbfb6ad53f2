/**
 * The access matrix of issue 3, through the API: anonymous / user / team member / robot / org admin /
 * superuser × read (GET repository) / write (PUT tag) / delete (DELETE tag) / admin (PUT permission) ×
 * public / private × own organization (orga) / other organization (orgb). Every cell is asserted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, PRINCIPALS, type ApiWorld, type RepoName, type Who } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

type Cell = [read: number, write: number, del: number, admin: number];
const OPS = ['read', 'write', 'delete', 'admin'] as const;

const anon: Cell = [200, 401, 401, 401];
const hidden: Cell = [404, 404, 404, 404];
const publicOnly: Cell = [200, 403, 403, 403];
const writer: Cell = [200, 201, 204, 403];
const admin: Cell = [200, 201, 204, 200];

/** Expected statuses for [orga/pub, orga/priv, orgb/pub, orgb/priv] (orga is "own" for member, robot and org admin). */
const EXPECTED: Record<Who, Record<RepoName, Cell>> = {
  anonymous: { 'orga/pub': anon, 'orga/priv': [401, 401, 401, 401], 'orgb/pub': anon, 'orgb/priv': [401, 401, 401, 401] },
  user: { 'orga/pub': publicOnly, 'orga/priv': hidden, 'orgb/pub': publicOnly, 'orgb/priv': hidden },
  member: { 'orga/pub': writer, 'orga/priv': writer, 'orgb/pub': publicOnly, 'orgb/priv': hidden },
  robot: { 'orga/pub': writer, 'orga/priv': writer, 'orgb/pub': publicOnly, 'orgb/priv': hidden },
  orgadmin: { 'orga/pub': admin, 'orga/priv': admin, 'orgb/pub': publicOnly, 'orgb/priv': hidden },
  superuser: { 'orga/pub': admin, 'orga/priv': admin, 'orgb/pub': admin, 'orgb/priv': admin },
};

for (const dialect of DIALECTS) {
  describe(`/api/v1 access matrix (${dialect})`, () => {
    let w: ApiWorld;
    before(async () => {
      w = await buildApiWorld(dialect);
      // A tag per principal to delete in every repository.
      for (const repo of Object.keys(w.digests) as RepoName[]) for (const who of PRINCIPALS) await w.push(repo, `${repo}:v1`, `del-${who}`);
    });
    after(async () => w.t.close());

    it('answers every cell as expected', async () => {
      const wrong: string[] = [];
      for (const who of PRINCIPALS) {
        for (const repo of Object.keys(EXPECTED[who]) as RepoName[]) {
          const base = `/api/v1/repository/${repo}`;
          const requests = [
            { method: 'GET' as const, url: base },
            { method: 'PUT' as const, url: `${base}/tag/mx-${who}`, payload: { manifest_digest: w.digests[repo].v2 } },
            { method: 'DELETE' as const, url: `${base}/tag/del-${who}` },
            { method: 'PUT' as const, url: `${base}/permissions/user/target`, payload: { role: 'read' } },
          ];
          for (const [i, r] of requests.entries()) {
            const res = await w.t.app.inject({ ...r, headers: w.auth[who] });
            const want = EXPECTED[who][repo][i];
            if (res.statusCode !== want) wrong.push(`${who} ${OPS[i]} ${repo}: got ${res.statusCode}, want ${want} (${res.body.slice(0, 200)})`);
            // A refusal must look the same whether or not the repository exists.
            if (want === 404) {
              const ghost = await w.t.app.inject({ ...r, url: r.url.replace(repo, `${repo.split('/')[0]}/ghost`), headers: w.auth[who] });
              if (ghost.statusCode !== 404 || ghost.json().detail !== res.json().detail.replace(repo, `${repo.split('/')[0]}/ghost`)) {
                wrong.push(`${who} ${OPS[i]} ${repo}: a missing repository answers differently (${ghost.statusCode} ${ghost.body.slice(0, 200)})`);
              }
            }
          }
        }
      }
      assert.deepEqual(wrong, []);
    });
  });
}
