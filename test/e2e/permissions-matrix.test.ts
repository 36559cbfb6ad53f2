/**
 * The permission matrix of issue 3, end to end: one real Wharf process with auth on, and every cell of
 *
 *   anonymous / user / team member / robot / org admin / superuser
 *     × pull / push / delete / admin
 *     × public / private repository
 *     × own (acme) / other (globex) organization
 *
 * asserted against the running server: pull, push and delete through real `skopeo` with `--creds` (or
 * `--no-creds`), and the admin column through the `/v2/auth` token endpoint (the actions granted for
 * `repository:<org>/<repo>:pull,push,delete`, a second and independent check of the pull/push/delete
 * grants) plus the principal's effective role as PermissionService computes it on the process's database.
 *
 * The expectations are written out below from the documented permission model
 * (src/registry/accounts/permission-service.ts, permission-access.ts, roles.ts), not from what the code does:
 *   - pull needs read, push needs write, delete needs write (as in Quay); superusers may do everything;
 *   - a public repository is readable by anyone, anonymous included (robots too);
 *   - a member of a team with role admin in an organization is admin of every repository in it;
 *   - team role `creator` grants no repository access by itself, only the right to create repositories;
 *   - a robot has exactly its own permissions (plus public read); robots cannot create repositories.
 * A cell that disagrees is a defect in Wharf, not in the table.
 *
 * Setup (accounts through the account services on the process's database, as `wharf org create` etc. do):
 *   founder   plain user who creates both organizations (so that nobody in the matrix is an owner by accident)
 *   acme      ("own")   teams: admins (role admin) = {olga}; devs (role creator) = {tom}
 *             acme/public  (public):  team devs write, robot acme+ci write
 *             acme/private (private): team devs read,  robot acme+ci write
 *   globex    ("other") globex/public (public), globex/private (private); no grants to anyone in the matrix
 *   alice     plain user, no grants, no teams
 *   admin     the bootstrap superuser (member of no team)
 * Every repository holds an image tagged `latest`, pushed by the admin.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { RepositoryName } from '../../src/oci/reference.js';
import { ANONYMOUS, type Principal } from '../../src/registry/access.js';
import type { RepositoryRole } from '../../src/registry/accounts/roles.js';
import { buildImage, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, type BuiltImage } from '../helpers/oci-layout.js';
import { digestOf, dockerRef, ociRef, skopeoCopy, skopeoDelete, SkopeoError, skopeoInspectRaw, type Credentials } from '../helpers/skopeo.js';
import { createRobot, openAccounts, withAccounts, type AccountsHandle } from '../helpers/wharf-accounts.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

type Who = 'anonymous' | 'alice' | 'tom' | 'acme+ci' | 'olga' | 'admin';
type Org = 'acme' | 'globex';
type Vis = 'public' | 'private';
type Action = 'pull' | 'push' | 'delete';
const Y = true;
const N = false;

/** What each principal is, for the cell names. */
const KIND: Record<Who, string> = {
  anonymous: 'anonymous',
  alice: 'user',
  tom: 'team-member',
  'acme+ci': 'robot',
  olga: 'org-admin',
  admin: 'superuser',
};

interface Row {
  who: Who;
  org: Org;
  vis: Vis;
  pull: boolean;
  push: boolean;
  delete: boolean;
  /** The admin column: the principal's effective role on the repository (null: none). */
  role: RepositoryRole | null;
  /** The actions the token endpoint must grant for `repository:<org>/<vis>:pull,push,delete`. */
  token: Action[];
}

// prettier-ignore
const EXPECTED: readonly Row[] = [
  // anonymous — no credentials: only what "public" gives to everyone.
  { who: 'anonymous', org: 'acme',   vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // public ⇒ readable by anyone; writing needs write
  { who: 'anonymous', org: 'acme',   vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // private, no identity ⇒ nothing
  { who: 'anonymous', org: 'globex', vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // public ⇒ readable by anyone
  { who: 'anonymous', org: 'globex', vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // private, no identity ⇒ nothing
  // alice — authenticated user without any grant or team: exactly what anonymous gets.
  { who: 'alice',     org: 'acme',   vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // public read only
  { who: 'alice',     org: 'acme',   vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // no grant on a private repo
  { who: 'alice',     org: 'globex', vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // public read only
  { who: 'alice',     org: 'globex', vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // no grant on a private repo
  // tom — member of acme's team `devs` (role creator: no repository access by itself), which has write on acme/public and read on acme/private.
  { who: 'tom',       org: 'acme',   vis: 'public',  pull: Y, push: Y, delete: Y, role: 'write', token: ['pull', 'push', 'delete'] }, // team write ⇒ pull, push, delete (delete needs write, as Quay)
  { who: 'tom',       org: 'acme',   vis: 'private', pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // team read on a private repo ⇒ pull only
  { who: 'tom',       org: 'globex', vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // no team in globex ⇒ public read only
  { who: 'tom',       org: 'globex', vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // no team in globex, private ⇒ nothing
  // acme+ci — robot with write on both acme repositories; robots can only be granted in their own namespace.
  { who: 'acme+ci',   org: 'acme',   vis: 'public',  pull: Y, push: Y, delete: Y, role: 'write', token: ['pull', 'push', 'delete'] }, // robot write
  { who: 'acme+ci',   org: 'acme',   vis: 'private', pull: Y, push: Y, delete: Y, role: 'write', token: ['pull', 'push', 'delete'] }, // robot write
  { who: 'acme+ci',   org: 'globex', vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // public read applies to robots too; no grant in globex
  { who: 'acme+ci',   org: 'globex', vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // other namespace's private repo ⇒ nothing
  // olga — member of acme's team `admins` (role admin) ⇒ admin of every acme repository; nothing special in globex.
  { who: 'olga',      org: 'acme',   vis: 'public',  pull: Y, push: Y, delete: Y, role: 'admin', token: ['pull', 'push', 'delete'] }, // org admin team ⇒ admin
  { who: 'olga',      org: 'acme',   vis: 'private', pull: Y, push: Y, delete: Y, role: 'admin', token: ['pull', 'push', 'delete'] }, // org admin team ⇒ admin, private included
  { who: 'olga',      org: 'globex', vis: 'public',  pull: Y, push: N, delete: N, role: 'read',  token: ['pull'] },                   // admin of acme only ⇒ public read in globex
  { who: 'olga',      org: 'globex', vis: 'private', pull: N, push: N, delete: N, role: null,    token: [] },                         // admin of acme only ⇒ nothing in globex private
  // admin — the superuser (in no team of either organization): everything everywhere.
  { who: 'admin',     org: 'acme',   vis: 'public',  pull: Y, push: Y, delete: Y, role: 'admin', token: ['pull', 'push', 'delete'] }, // superuser
  { who: 'admin',     org: 'acme',   vis: 'private', pull: Y, push: Y, delete: Y, role: 'admin', token: ['pull', 'push', 'delete'] }, // superuser
  { who: 'admin',     org: 'globex', vis: 'public',  pull: Y, push: Y, delete: Y, role: 'admin', token: ['pull', 'push', 'delete'] }, // superuser
  { who: 'admin',     org: 'globex', vis: 'private', pull: Y, push: Y, delete: Y, role: 'admin', token: ['pull', 'push', 'delete'] }, // superuser
];

/**
 * Beyond the matrix: pushing to a repository that does not exist yet (`<org>/new-<who>`) creates it only
 * for callers who may create repositories in the namespace.
 */
// prettier-ignore
const CREATE: ReadonlyArray<{ who: Who; org: Org; create: boolean }> = [
  { who: 'anonymous', org: 'acme', create: N }, { who: 'anonymous', org: 'globex', create: N }, // no identity
  { who: 'alice',     org: 'acme', create: N }, { who: 'alice',     org: 'globex', create: N }, // no team anywhere
  { who: 'tom',       org: 'acme', create: Y }, { who: 'tom',       org: 'globex', create: N }, // team role creator in acme only
  { who: 'acme+ci',   org: 'acme', create: N }, { who: 'acme+ci',   org: 'globex', create: N }, // robots cannot create repositories
  { who: 'olga',      org: 'acme', create: Y }, { who: 'olga',      org: 'globex', create: N }, // admin team in acme only
  { who: 'admin',     org: 'acme', create: Y }, { who: 'admin',     org: 'globex', create: Y }, // superuser
];

const PRINCIPALS: readonly Who[] = ['anonymous', 'alice', 'tom', 'acme+ci', 'olga', 'admin'];
const ACTIONS: readonly (Action | 'admin')[] = ['pull', 'push', 'delete', 'admin'];
const PASSWORDS: Record<'alice' | 'tom' | 'olga' | 'founder', string> = {
  alice: 'alice-password-1',
  tom: 'tom-password-12',
  olga: 'olga-password-123',
  founder: 'founder-password-1234',
};
/** How skopeo (and distribution's error codes) say "not allowed". */
const AUTH_ERROR = /unauthorized|authentication required|denied|forbidden|\b401\b|\b403\b/i;
/** How many cells (each one to three skopeo runs) run at once. */
const CONCURRENCY = 4;

const repoOf = (org: Org, vis: Vis): string => `${org}/${vis}`;
const cellName = (who: Who, action: string, vis: Vis | 'new', org: Org): string => `${KIND[who]}(${who})/${action}/${vis}/${org}`;
const slug = (who: Who): string => who.replace('+', '-');

describe('permission matrix through skopeo and /v2/auth', { concurrency: CONCURRENCY }, () => {
  let wharf: WharfProcess | undefined;
  let work: string;
  let layout: string;
  let handle: (AccountsHandle & { close(): Promise<void> }) | undefined;
  const creds = new Map<Who, Credentials | null>([['anonymous', null]]);
  let base: BuiltImage;
  /** One distinct image per push / delete / create cell, so that no two cells share a manifest or a blob. */
  const images = new Map<string, BuiltImage>();

  const w = (): WharfProcess => {
    if (!wharf) throw new Error('wharf did not start');
    return wharf;
  };
  const credsOf = (who: Who): Credentials | null => {
    const c = creds.get(who);
    if (c === undefined) throw new Error(`no credentials for ${who}`);
    return c;
  };
  const admin = (): Credentials => credsOf('admin')!;

  /** Like `it`, but a failure also prints the tail of Wharf's output. */
  const cell = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-2000)}`);
        throw err;
      }
    });
  };

  /** Runs skopeo; on failure returns the SkopeoError (any other error is thrown). */
  async function attempt(run: () => Promise<unknown>): Promise<SkopeoError | undefined> {
    try {
      await run();
      return undefined;
    } catch (err) {
      if (err instanceof SkopeoError) return err;
      throw err;
    }
  }

  /** Asserts the outcome of a skopeo run against the expectation, naming the cell. */
  function expectOutcome(name: string, expected: boolean, err: SkopeoError | undefined): void {
    if (expected) {
      if (err) assert.fail(`${name}: expected success, but skopeo failed:\n${err.stderr.trim()}`);
    } else {
      assert.ok(err, `${name}: expected a refusal, but skopeo succeeded`);
      assert.match(err.stderr, AUTH_ERROR, `${name}: refused, but not with an authorization error:\n${err.stderr.trim()}`);
    }
  }

  /** The manifest digest `reference` of `repo` resolves to, read by the admin over HTTP Basic; undefined for 404. */
  async function manifestDigest(repo: string, reference: string): Promise<string | undefined> {
    const res = await fetch(`${w().url}/v2/${repo}/manifests/${reference}`, {
      method: 'HEAD',
      headers: { authorization: basicAuth(admin()), accept: `${MEDIA_TYPE_OCI_MANIFEST}, ${MEDIA_TYPE_OCI_INDEX}` },
    });
    if (res.status === 404) return undefined;
    assert.equal(res.status, 200, `HEAD /v2/${repo}/manifests/${reference} as admin`);
    return res.headers.get('docker-content-digest') ?? undefined;
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-perm-'));
    layout = join(work, 'layout');
    // index.json is read-modify-write: build sequentially.
    base = await buildImage(layout, { tag: 'base', seed: 'perm-base', layers: [{ files: [{ path: 'etc/base', content: 'base\n' }] }] });
    const tags: string[] = [];
    for (const row of EXPECTED) for (const action of ['push', 'delete']) tags.push(`${action}-${slug(row.who)}-${row.org}-${row.vis}`);
    for (const row of CREATE) tags.push(`create-${slug(row.who)}-${row.org}`);
    for (const tag of tags) {
      images.set(tag, await buildImage(layout, { tag, seed: `perm-${tag}`, layers: [{ files: [{ path: `etc/${tag}`, content: `${tag}\n` }] }] }));
    }

    wharf = await startWharf({ organizations: [] });
    creds.set('admin', wharf.admin);
    await withAccounts(wharf, async (a) => {
      for (const name of ['founder', 'alice', 'tom', 'olga'] as const) await a.accounts.createUser({ name, password: PASSWORDS[name] });
      for (const org of ['acme', 'globex']) await a.accounts.createOrganization({ name: org, creator: 'founder' });
      await a.teams.createTeam('acme', 'admins', { role: 'admin' });
      await a.teams.addMember('acme', 'admins', 'olga');
      await a.teams.createTeam('acme', 'devs', { role: 'creator' });
      await a.teams.addMember('acme', 'devs', 'tom');
      for (const org of ['acme', 'globex'] as const) {
        for (const vis of ['public', 'private'] as const) await a.repositories.create(repoOf(org, vis) as RepositoryName, { visibility: vis });
      }
      const repo = async (org: Org, vis: Vis) => (await a.repositories.details(repoOf(org, vis) as RepositoryName))!;
      await a.grants.setRepositoryPermission(await repo('acme', 'public'), { kind: 'team', name: 'devs' }, 'write');
      await a.grants.setRepositoryPermission(await repo('acme', 'private'), { kind: 'team', name: 'devs' }, 'read');
    });
    creds.set('acme+ci', await createRobot(wharf, 'acme+ci', [repoOf('acme', 'public'), repoOf('acme', 'private')], 'write'));
    for (const name of ['alice', 'tom', 'olga'] as const) creds.set(name, { username: name, password: PASSWORDS[name] });
    handle = await openAccounts(wharf);

    // The admin pushes the image every pull cell reads.
    await Promise.all(
      EXPECTED.filter((r) => r.who === 'admin').map(async (r) => {
        const pushed = await skopeoCopy(ociRef(layout, 'base'), dockerRef(wharf!.host, repoOf(r.org, r.vis), 'latest'), { creds: admin(), preserveDigests: true });
        assert.equal(pushed.digest, base.manifestDigest);
      }),
    );
  });

  after(async () => {
    await handle?.close();
    await wharf?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the expectation table covers every cell once, and its token column agrees with pull/push/delete', () => {
    const keys = EXPECTED.map((r) => `${r.who}/${r.org}/${r.vis}`);
    assert.equal(new Set(keys).size, keys.length, 'duplicate rows');
    assert.equal(keys.length, PRINCIPALS.length * 2 * 2);
    for (const r of EXPECTED) {
      const fromColumns = (['pull', 'push', 'delete'] as const).filter((a) => r[a]);
      assert.deepEqual(r.token, fromColumns, `row ${r.who}/${r.org}/${r.vis}`);
    }
  });

  for (const row of EXPECTED) {
    const repo = repoOf(row.org, row.vis);
    for (const action of ACTIONS) {
      const name = `${cellName(row.who, action, row.vis, row.org)} [${repo}]`;
      switch (action) {
        case 'pull':
          cell(name, async () => {
            let raw: Buffer | undefined;
            const err = await attempt(async () => {
              raw = await skopeoInspectRaw(dockerRef(w().host, repo, 'latest'), { creds: credsOf(row.who) });
            });
            expectOutcome(name, row.pull, err);
            if (raw) assert.equal(digestOf(raw), base.manifestDigest, `${name}: pulled manifest`);
          });
          break;
        case 'push':
          cell(name, async () => {
            const image = images.get(`push-${slug(row.who)}-${row.org}-${row.vis}`)!;
            const tag = `pushed-by-${slug(row.who)}`;
            const err = await attempt(() =>
              skopeoCopy(ociRef(layout, `push-${slug(row.who)}-${row.org}-${row.vis}`), dockerRef(w().host, repo, tag), { creds: credsOf(row.who), preserveDigests: true }),
            );
            expectOutcome(name, row.push, err);
            assert.equal(await manifestDigest(repo, tag), row.push ? image.manifestDigest : undefined, `${name}: tag ${tag} as the admin sees it afterwards`);
          });
          break;
        case 'delete':
          cell(name, async () => {
            const source = `delete-${slug(row.who)}-${row.org}-${row.vis}`;
            const image = images.get(source)!;
            // The manifest to delete, pushed by the admin for this cell alone (also for cells that must be refused,
            // so that a refusal cannot come from a missing manifest).
            await skopeoCopy(ociRef(layout, source), dockerRef(w().host, repo, `to-delete-by-${slug(row.who)}`), { creds: admin(), preserveDigests: true });
            assert.equal(await manifestDigest(repo, image.manifestDigest), image.manifestDigest, `${name}: setup push`);
            const err = await attempt(() => skopeoDelete(dockerRef(w().host, repo, image.manifestDigest), { creds: credsOf(row.who) }));
            expectOutcome(name, row.delete, err);
            assert.equal(await manifestDigest(repo, image.manifestDigest), row.delete ? undefined : image.manifestDigest, `${name}: manifest as the admin sees it afterwards`);
          });
          break;
        case 'admin':
          cell(name, async () => {
            // 1. The token endpoint grants exactly the expected actions.
            const c = credsOf(row.who);
            const qs = new URLSearchParams({ service: w().host, scope: `repository:${repo}:pull,push,delete` });
            const res = await fetch(`${w().url}/v2/auth?${qs}`, { headers: c ? { authorization: basicAuth(c) } : {} });
            const body = await res.text();
            assert.equal(res.status, 200, `${name}: token endpoint answered ${res.status}: ${body}`);
            const token = (JSON.parse(body) as { token: string }).token;
            const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
              sub?: string;
              access?: Array<{ type: string; name: string; actions: string[] }>;
            };
            assert.equal(claims.sub, c ? c.username : undefined, `${name}: token subject`);
            const entries = (claims.access ?? []).filter((e) => e.type === 'repository' && e.name === repo);
            assert.equal(entries.length, 1, `${name}: one access entry for ${repo} in ${JSON.stringify(claims.access)}`);
            const order: readonly string[] = ['pull', 'push', 'delete'];
            const granted = [...entries[0]!.actions].sort((a, b) => order.indexOf(a) - order.indexOf(b));
            assert.deepEqual(granted, row.token, `${name}: actions granted by /v2/auth for repository:${repo}:pull,push,delete`);

            // 2. The effective role (admin or not) as PermissionService computes it on the process's database.
            const h = handle!;
            const principal: Principal | undefined = row.who === 'anonymous' ? ANONYMOUS : await h.authenticator.principalFor(row.who);
            assert.ok(principal, `${name}: principal ${row.who} exists`);
            const details = await h.repositories.details(repo as RepositoryName);
            assert.ok(details, `${name}: repository ${repo} exists`);
            assert.equal((await h.permissions.roleOn(principal, details)) ?? null, row.role, `${name}: effective role on ${repo}`);
          });
          break;
      }
    }
  }

  for (const row of CREATE) {
    const repo = `${row.org}/new-${slug(row.who)}`;
    const name = `${cellName(row.who, 'push', 'new', row.org)} [${repo}]`;
    cell(name, async () => {
      const source = `create-${slug(row.who)}-${row.org}`;
      const image = images.get(source)!;
      const err = await attempt(() => skopeoCopy(ociRef(layout, source), dockerRef(w().host, repo, 'v1'), { creds: credsOf(row.who), preserveDigests: true }));
      expectOutcome(name, row.create, err);
      const details = await handle!.repositories.details(repo as RepositoryName);
      if (row.create) {
        assert.equal(await manifestDigest(repo, 'v1'), image.manifestDigest, `${name}: pushed tag as the admin sees it`);
        assert.equal(details?.visibility, 'private', `${name}: a repository created by a push is private by default`);
      } else {
        assert.equal(details, undefined, `${name}: a refused push must not create ${repo}`);
      }
    });
  }
});
