/**
 * A small populated registry for `/api/v1` route tests:
 *
 *   superuser `root`;  `oadmin` creates org `orga` (so is in its owners team);  `bob` creates `orgb`;
 *   `member` is in team `devs` (role member) of orga, which has write on orga's repositories;
 *   robot `orga+ci` with write on orga's repositories;  `uma` has nothing;  `target` is someone to grant.
 *   repositories orga/pub (public), orga/priv, orgb/pub (public), orgb/priv, each with tag `v1` on an
 *   index manifest (`digests[repo].v1`) and one more manifest `digests[repo].v2` that nothing tags.
 *
 * `auth[who]` is an Authorization header: Bearer API tokens (all scopes) for users, Basic for the robot.
 */
import { API_SCOPES } from '../../src/registry/accounts/api-scopes.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { RepositoryName, Tag } from '../../src/oci/reference.js';
import { buildTestApp, type TestApp } from './app.js';
import type { TestDialect } from './databases.js';

export const PRINCIPALS = ['anonymous', 'user', 'member', 'robot', 'orgadmin', 'superuser'] as const;
export type Who = (typeof PRINCIPALS)[number];
export const REPOS = ['orga/pub', 'orga/priv', 'orgb/pub', 'orgb/priv'] as const;
export type RepoName = (typeof REPOS)[number];

export interface ApiWorld {
  t: TestApp;
  auth: Record<Who, Record<string, string>>;
  digests: Record<RepoName, { v1: Digest; v2: Digest }>;
  /** Stores an index manifest (distinct per `seed`) in the repository, optionally tagged; returns its digest. */
  push(repo: string, seed: string, tag?: string): Promise<Digest>;
}

export async function buildApiWorld(dialect: TestDialect, opts: Parameters<typeof buildTestApp>[1] = {}): Promise<ApiWorld> {
  const t = await buildTestApp(dialect, opts);
  const a = t.accounts!;
  for (const name of ['root', 'oadmin', 'bob', 'member', 'uma', 'target']) {
    await a.accounts.createUser({ name, password: `${name}-password-1`, superuser: name === 'root' });
  }
  await a.accounts.createOrganization({ name: 'orga', creator: 'oadmin' });
  await a.accounts.createOrganization({ name: 'orgb', creator: 'bob' });
  await a.teams.createTeam('orga', 'devs', { role: 'member' });
  await a.teams.addMember('orga', 'devs', 'member');
  const { robot, token } = await a.robots.create('orga', 'ci');

  const push = async (repo: string, seed: string, tag?: string): Promise<Digest> => {
    const ref = await t.registry.repositories.get(repo as RepositoryName);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { seed } }));
    const reference = tag === undefined ? { kind: 'digest' as const, digest: digestOf(bytes) } : { kind: 'tag' as const, tag: tag as Tag };
    return (await t.registry.manifests.put(ref, reference, bytes, 'application/vnd.oci.image.index.v1+json')).digest;
  };

  const digests = {} as ApiWorld['digests'];
  for (const name of REPOS) {
    const { repository } = await t.registry.repositories.create(name as RepositoryName, { visibility: name.endsWith('/pub') ? 'public' : 'private' });
    if (name.startsWith('orga/')) {
      await a.grants.setRepositoryPermission(repository, { kind: 'team', name: 'devs' }, 'write');
      await a.grants.setRepositoryPermission(repository, { kind: 'robot', name: robot.name }, 'write');
    }
    digests[name] = { v1: await push(name, `${name}:v1`, 'v1'), v2: await push(name, `${name}:v2`) };
  }

  const bearer = async (user: string) => ({ authorization: `Bearer ${(await a.apiTokens.create(user, { name: 'test', scopes: [...API_SCOPES] })).secret}` });
  const auth: ApiWorld['auth'] = {
    anonymous: {},
    user: await bearer('uma'),
    member: await bearer('member'),
    robot: { authorization: `Basic ${Buffer.from(`${robot.name}:${token}`).toString('base64')}` },
    orgadmin: await bearer('oadmin'),
    superuser: await bearer('root'),
  };
  return { t, auth, digests, push };
}
