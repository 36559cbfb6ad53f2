/**
 * The permission matrix: every principal × every repository action × public/private × own/other
 * organization, each cell asserted against an explicit table, through both PermissionService (the role)
 * and PermissionAccess (what `/v2` allows, and which refusal it gives).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { RepositoryStore } from '../../db/repository-store.js';
import { isRegistryError } from '../../oci/errors.js';
import type { RepositoryName } from '../../oci/reference.js';
import { ANONYMOUS, type Principal, type RepositoryAction } from '../access.js';
import { RepositoryService } from '../repositories.js';
import { createAccounts } from '../../main/compose-accounts.js';
import type { Accounts } from './accounts.js';

type Cell = 'none' | 'read' | 'write' | 'admin';
type Org = 'acme' | 'globex';
type Vis = 'public' | 'private';
const PRINCIPALS = ['anonymous', 'user', 'teamMember', 'robot', 'orgAdmin', 'superuser', 'creator', 'scopedToken', 'disabled'] as const;
type Who = (typeof PRINCIPALS)[number];

/**
 * "Own" organization is acme for everyone (where their grants and memberships are); globex is the other.
 *   user         ursula: own permission read on acme/public, write on acme/private
 *   teamMember   tom: own permission read on acme/private; team devs (member) has write on both acme repos
 *   robot        acme+ci: admin on acme/private
 *   orgAdmin     olga: in acme's owners team
 *   superuser    sam
 *   creator      cora: in acme's makers team (role creator), no repository grants
 *   scopedToken  olga through an API token with scope repo:read only
 *   disabled     dora: in acme's owners team, then disabled
 */
const EXPECTED: Record<Who, Record<Org, Record<Vis, Cell>>> = {
  anonymous: { acme: { public: 'read', private: 'none' }, globex: { public: 'read', private: 'none' } },
  user: { acme: { public: 'read', private: 'write' }, globex: { public: 'read', private: 'none' } },
  teamMember: { acme: { public: 'write', private: 'write' }, globex: { public: 'read', private: 'none' } },
  robot: { acme: { public: 'read', private: 'admin' }, globex: { public: 'read', private: 'none' } },
  orgAdmin: { acme: { public: 'admin', private: 'admin' }, globex: { public: 'read', private: 'none' } },
  superuser: { acme: { public: 'admin', private: 'admin' }, globex: { public: 'admin', private: 'admin' } },
  creator: { acme: { public: 'read', private: 'none' }, globex: { public: 'read', private: 'none' } },
  scopedToken: { acme: { public: 'read', private: 'read' }, globex: { public: 'read', private: 'none' } },
  disabled: { acme: { public: 'none', private: 'none' }, globex: { public: 'none', private: 'none' } },
};

/** [may create repositories, may administer the namespace] in acme, globex. */
const NAMESPACE_EXPECTED: Record<Who, Record<Org, [boolean, boolean]>> = {
  anonymous: { acme: [false, false], globex: [false, false] },
  user: { acme: [false, false], globex: [false, false] },
  teamMember: { acme: [false, false], globex: [false, false] },
  robot: { acme: [false, false], globex: [false, false] },
  orgAdmin: { acme: [true, true], globex: [false, false] },
  superuser: { acme: [true, true], globex: [true, true] },
  creator: { acme: [true, false], globex: [false, false] },
  scopedToken: { acme: [false, false], globex: [false, false] },
  disabled: { acme: [false, false], globex: [false, false] },
};

const NEEDS: Record<RepositoryAction, Cell> = { pull: 'read', push: 'write', delete: 'write' };
const RANK: Cell[] = ['none', 'read', 'write', 'admin'];
const atLeast = (have: Cell, need: Cell) => RANK.indexOf(have) >= RANK.indexOf(need);

for (const dialect of DIALECTS) {
  describe(`permission matrix (${dialect})`, () => {
    let h: DatabaseHandle;
    let a: Accounts;
    let repositories: RepositoryService;
    const who = {} as Record<Who, Principal>;
    before(async () => {
      h = await openTestDatabase(dialect);
      repositories = new RepositoryService(new RepositoryStore(h.db, h.dialect));
      a = createAccounts(h.db, h.dialect, repositories);
      const user = async (name: string, superuser = false) => {
        await a.accounts.createUser({ name, superuser });
        return (await a.authenticator.principalFor(name))!;
      };
      who.anonymous = ANONYMOUS;
      who.orgAdmin = await user('olga');
      who.user = await user('ursula');
      who.teamMember = await user('tom');
      who.superuser = await user('sam', true);
      who.creator = await user('cora');
      who.disabled = await user('dora');
      await user('gina');
      await a.accounts.createOrganization({ name: 'acme', creator: 'olga' });
      await a.accounts.createOrganization({ name: 'globex', creator: 'gina' });
      await a.teams.addMember('acme', 'owners', 'dora');
      await a.teams.createTeam('acme', 'devs', { role: 'member' });
      await a.teams.addMember('acme', 'devs', 'tom');
      await a.teams.createTeam('acme', 'makers', { role: 'creator' });
      await a.teams.addMember('acme', 'makers', 'cora');
      await a.robots.create('acme', 'ci');
      who.robot = (await a.authenticator.principalFor('acme+ci'))!;
      const token = await a.apiTokens.create('olga', { name: 'read-only', scopes: ['repo:read'] });
      who.scopedToken = (await a.apiTokens.verify(token.secret))!.principal;
      for (const org of ['acme', 'globex'] as const) {
        for (const vis of ['public', 'private'] as const) await repositories.create(`${org}/${vis}` as RepositoryName, { visibility: vis });
      }
      const repo = async (n: string) => (await repositories.details(n as RepositoryName))!;
      await a.grants.setRepositoryPermission(await repo('acme/public'), { kind: 'user', name: 'ursula' }, 'read');
      await a.grants.setRepositoryPermission(await repo('acme/private'), { kind: 'user', name: 'ursula' }, 'write');
      await a.grants.setRepositoryPermission(await repo('acme/private'), { kind: 'user', name: 'tom' }, 'read');
      await a.grants.setRepositoryPermission(await repo('acme/public'), { kind: 'team', name: 'devs' }, 'write');
      await a.grants.setRepositoryPermission(await repo('acme/private'), { kind: 'team', name: 'devs' }, 'write');
      await a.grants.setRepositoryPermission(await repo('acme/private'), { kind: 'robot', name: 'acme+ci' }, 'admin');
      await a.accounts.setEnabled('dora', false);
    });
    after(async () => h.close());

    for (const p of PRINCIPALS) {
      it(`${p}: every repository cell`, async () => {
        for (const org of ['acme', 'globex'] as const) {
          for (const vis of ['public', 'private'] as const) {
            const name = `${org}/${vis}` as RepositoryName;
            const want = EXPECTED[p][org][vis];
            const where = `${p} on ${name}`;
            const repo = (await repositories.details(name))!;
            assert.equal((await a.permissions.roleOn(who[p], repo)) ?? 'none', want, `${where}: role`);
            assert.equal(await a.access.canSee(who[p], name), want !== 'none', `${where}: canSee`);
            const allowed: RepositoryAction[] = [];
            for (const action of ['pull', 'push', 'delete'] as const) {
              const ok = atLeast(want, NEEDS[action]);
              if (ok) allowed.push(action);
              const outcome = await a.access.authorize(who[p], name, [action]).then(
                () => 'allowed',
                (err) => (isRegistryError(err) ? err.code : `unexpected ${String(err)}`),
              );
              assert.equal(outcome, ok ? 'allowed' : p === 'anonymous' ? 'UNAUTHORIZED' : 'DENIED', `${where}: ${action}`);
            }
            assert.deepEqual(await a.access.grant(who[p], name, ['pull', 'push', 'delete']), allowed, `${where}: grant`);
          }
        }
      });

      it(`${p}: namespace rights`, async () => {
        for (const org of ['acme', 'globex'] as const) {
          const [create, admin] = NAMESPACE_EXPECTED[p][org];
          assert.equal(await a.permissions.canCreateRepository(who[p], org), create, `${p} create in ${org}`);
          assert.equal(await a.permissions.canAdminNamespace(who[p], org), admin, `${p} admin ${org}`);
        }
      });
    }

    it('a user owns their own namespace; nobody else does', async () => {
      await repositories.create('ursula/mine' as RepositoryName, { visibility: 'private' });
      const mine = (await repositories.details('ursula/mine' as RepositoryName))!;
      assert.equal(await a.permissions.roleOn(who.user, mine), 'admin');
      assert.equal(await a.permissions.canCreateRepository(who.user, 'ursula'), true);
      assert.equal(await a.permissions.canAdminNamespace(who.user, 'ursula'), true);
      for (const p of ['teamMember', 'orgAdmin', 'robot', 'anonymous'] as const) {
        assert.equal(await a.permissions.roleOn(who[p], mine), undefined, p);
        assert.equal(await a.permissions.canCreateRepository(who[p], 'ursula'), false, p);
      }
      assert.equal(await a.permissions.roleOn(who.superuser, mine), 'admin');
      assert.equal(await a.permissions.canCreateRepository(who.user, 'no-such-namespace'), false);
    });

    it('reports organization roles and superuser status from the database, not the principal', async () => {
      assert.equal(await a.permissions.organizationRole(who.orgAdmin, 'acme'), 'admin');
      assert.equal(await a.permissions.organizationRole(who.creator, 'acme'), 'creator');
      assert.equal(await a.permissions.organizationRole(who.teamMember, 'acme'), 'member');
      assert.equal(await a.permissions.organizationRole(who.user, 'acme'), undefined);
      assert.equal(await a.permissions.organizationRole(who.superuser, 'acme'), undefined);
      assert.equal(await a.permissions.isSuperuser(who.superuser), true);
      assert.equal(await a.permissions.isSuperuser({ ...who.user, superuser: true } as Principal), false, 'a forged flag grants nothing');
    });

    it('lists for each principal exactly the repositories it can read', async () => {
      const all = { limit: 100 };
      for (const p of PRINCIPALS) {
        const expected = (['acme', 'globex'] as const)
          .flatMap((org) => (['private', 'public'] as const).filter((vis) => EXPECTED[p][org][vis] !== 'none').map((vis) => `${org}/${vis}`))
          .sort();
        const got = (await a.access.listReadable(who[p], all)).filter((n) => n.startsWith('acme/') || n.startsWith('globex/'));
        assert.deepEqual(got, expected, p);
      }
    });
  });
}
