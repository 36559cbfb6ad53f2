import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { RepositoryStore } from '../../db/repository-store.js';
import { isRegistryError, type RegistryError } from '../../oci/errors.js';
import type { RepositoryName } from '../../oci/reference.js';
import { ANONYMOUS, type Principal, type RepositoryAction } from '../access.js';
import { RepositoryService } from '../repositories.js';
import { createAccounts } from '../../main/compose-accounts.js';
import type { Accounts } from './accounts.js';

const rn = (s: string) => s as RepositoryName;

for (const dialect of DIALECTS) {
  describe(`PermissionAccess (${dialect})`, () => {
    let h: DatabaseHandle;
    let a: Accounts;
    let repositories: RepositoryService;
    const p = {} as Record<'olga' | 'tom' | 'cora' | 'sam' | 'stranger' | 'mirror' | 'ci', Principal>;
    before(async () => {
      h = await openTestDatabase(dialect);
      repositories = new RepositoryService(new RepositoryStore(h.db, h.dialect));
      a = createAccounts(h.db, h.dialect, repositories);
      for (const name of ['olga', 'tom', 'cora', 'sam', 'stranger']) await a.accounts.createUser({ name, superuser: name === 'sam' });
      await a.accounts.createOrganization({ name: 'acme', creator: 'olga' });
      await a.teams.createTeam('acme', 'devs', { role: 'member' });
      await a.teams.addMember('acme', 'devs', 'tom');
      await a.teams.createTeam('acme', 'makers', { role: 'creator' });
      await a.teams.addMember('acme', 'makers', 'cora');
      await a.robots.create('acme', 'mirror');
      await a.robots.create('acme', 'ci');
      for (const name of ['olga', 'tom', 'cora', 'sam', 'stranger', 'acme+mirror', 'acme+ci'] as const) {
        p[name === 'acme+mirror' ? 'mirror' : name === 'acme+ci' ? 'ci' : name] = (await a.authenticator.principalFor(name))!;
      }
    });
    after(async () => h.close());

    const outcome = (who: Principal, name: string, actions: RepositoryAction[]) =>
      a.access.authorize(who, rn(name), actions).then(
        () => 'allowed',
        (err) => (isRegistryError(err) ? `${err.code}: ${err.message}` : `unexpected ${String(err)}`),
      );
    const refusal = async (who: Principal, name: string, actions: RepositoryAction[]): Promise<RegistryError> => {
      try {
        await a.access.authorize(who, rn(name), actions);
      } catch (err) {
        if (isRegistryError(err)) return err;
        throw err;
      }
      throw new Error(`expected ${name} to be refused`);
    };
    const grantAll = async (name: string, subject: { kind: 'user' | 'team' | 'robot'; name: string }, role: 'read' | 'write' | 'admin') =>
      a.grants.setRepositoryPermission((await repositories.details(rn(name)))!, subject, role);

    it('refuses a private repository exactly as it refuses a missing one', async () => {
      await repositories.create(rn('acme/secret'), { visibility: 'private' });
      for (const who of [ANONYMOUS, p.stranger!, p.ci!]) {
        for (const actions of [['pull'], ['pull', 'push'], ['delete']] as RepositoryAction[][]) {
          const hidden = await refusal(who, 'acme/secret', actions);
          const missing = await refusal(who, 'acme/absent', actions);
          const missingNs = await refusal(who, 'nowhere/absent', actions);
          for (const e of [hidden, missing, missingNs]) {
            assert.equal(e.code, who.kind === 'anonymous' ? 'UNAUTHORIZED' : 'DENIED');
            assert.equal(e.message, hidden.message);
            assert.equal(e.status, hidden.status);
          }
          const shape = (e: RegistryError) => JSON.stringify(e.detail).replace(/"Name":"[^"]*"/g, '"Name":"?"');
          assert.equal(shape(missing), shape(hidden));
          assert.deepEqual(hidden.detail, actions.map((Action) => ({ Type: 'repository', Name: 'acme/secret', Action })));
        }
      }
    });

    it('lets those who may create repositories learn that one is missing (the handler says NAME_UNKNOWN)', async () => {
      assert.equal(await outcome(p.cora!, 'acme/absent', ['pull']), 'allowed');
      assert.equal(await outcome(p.olga!, 'acme/absent', ['pull', 'delete']), 'allowed');
      assert.equal(await outcome(p.sam!, 'nowhere/absent', ['pull']), 'allowed');
      assert.equal(await repositories.details(rn('acme/absent')), undefined, 'pull does not create');
    });

    it("creates a missing namespace as an organization owned by the superuser on a superuser's push", async () => {
      assert.equal(await outcome(p.sam!, 'fresh-org/app', ['pull', 'push']), 'allowed');
      const org = await a.accounts.getOrganization('fresh-org');
      assert.ok(org, 'organization created');
      assert.ok(await repositories.details(rn('fresh-org/app')));
      const kinds = (await a.audit.query({ namespace: 'fresh-org' })).entries.map((e) => `${e.kind}:${e.actor.kind === 'user' ? e.actor.name : ''}`);
      assert.deepEqual(kinds.sort(), ['create_repo:sam', 'org_create:sam'], 'both creations are in the audit log');
      // Only superusers: a plain user's push into a missing namespace is refused and creates nothing.
      assert.equal((await refusal(p.cora!, 'other-fresh/app', ['pull', 'push'])).code, 'DENIED');
      assert.equal(await a.accounts.getOrganization('other-fresh'), undefined);
    });

    it("refuses a superuser's push into a namespace no organization may be named (NAME_INVALID), granting the rest", async () => {
      for (const name of ['b/app', 'q/a/b/c/d']) {
        const err = await refusal(p.sam!, name, ['pull', 'push']);
        assert.equal(err.code, 'NAME_INVALID', err.message);
        assert.match(err.message, /namespace [bq] cannot be created: a user or organization name must be 2 to 255 characters long/);
        assert.deepEqual(await a.access.grant(p.sam!, rn(name), ['pull', 'push']), ['pull'], 'the token endpoint grants what it can');
      }
      assert.equal(await a.accounts.getOrganization('b'), undefined);
      assert.equal(await repositories.details(rn('b/app')), undefined);
    });

    it('creates a repository on push for those who may, with defaults and the creator as admin', async () => {
      await a.grants.setDefaultPermission('acme', { kind: 'team', name: 'devs' }, 'write');
      await a.grants.setDefaultPermission('acme', { kind: 'robot', name: 'acme+ci' }, 'read');
      assert.equal(await outcome(p.cora!, 'acme/made-by-cora', ['pull', 'push']), 'allowed');
      const made = (await repositories.details(rn('acme/made-by-cora')))!;
      assert.equal(made.visibility, 'private');
      assert.deepEqual(
        (await a.grants.listRepositoryPermissions(made)).map((x) => `${x.kind}:${x.name}:${x.role}`),
        ['user:cora:admin', 'team:devs:write', 'robot:acme+ci:read'],
      );
      assert.equal(await a.permissions.roleOn(p.cora!, made), 'admin');
      assert.equal(await outcome(p.tom!, 'acme/made-by-cora', ['pull', 'push']), 'allowed');
      assert.match(await outcome(p.ci!, 'acme/made-by-cora', ['push']), /^DENIED/);
      assert.match(await outcome(ANONYMOUS, 'acme/made-by-cora', ['pull']), /^UNAUTHORIZED/);

      // The token endpoint's path creates too, and grants only what is allowed.
      assert.deepEqual(await a.access.grant(p.olga!, rn('acme/made-by-token'), ['pull', 'push']), ['pull', 'push']);
      assert.ok(await repositories.details(rn('acme/made-by-token')));
      assert.deepEqual(await a.access.grant(p.tom!, rn('acme/not-for-tom'), ['pull', 'push']), []);
      assert.equal(await repositories.details(rn('acme/not-for-tom')), undefined);
      assert.deepEqual(await a.access.grant(p.ci!, rn('acme/not-for-robots'), ['push']), []);
      assert.match(await outcome(p.ci!, 'acme/not-for-robots', ['pull', 'push']), /^DENIED/);

      // In one's own namespace no extra grant is needed; a superuser creates anywhere that exists.
      assert.equal(await outcome(p.tom!, 'tom/app', ['pull', 'push']), 'allowed');
      assert.deepEqual(await a.grants.listRepositoryPermissions((await repositories.details(rn('tom/app')))!), []);
      assert.equal(await outcome(p.sam!, 'tom/by-sam', ['push']), 'allowed');
      assert.match(await outcome(p.stranger!, 'tom/nope', ['push']), /^DENIED/);

      const publicAccess = createAccounts(h.db, h.dialect, repositories, { defaultVisibility: 'public' }).access;
      await publicAccess.authorize(p.olga!, rn('acme/public-by-default'), ['push']);
      assert.equal((await repositories.details(rn('acme/public-by-default')))?.visibility, 'public');
    });

    it('refuses every write to a READ_ONLY repository, reads stay as they were', async () => {
      const { repository } = await repositories.create(rn('acme/frozen'), { visibility: 'public' });
      await grantAll('acme/frozen', { kind: 'robot', name: 'acme+ci' }, 'write');
      await repositories.setState(repository, 'READ_ONLY');
      for (const who of [p.olga!, p.sam!, p.ci!]) {
        assert.equal(await outcome(who, 'acme/frozen', ['pull']), 'allowed');
        for (const action of ['push', 'delete'] as const) assert.equal(await outcome(who, 'acme/frozen', ['pull', action]), 'DENIED: repository acme/frozen is read-only');
      }
      assert.equal(await outcome(ANONYMOUS, 'acme/frozen', ['pull']), 'allowed');
      assert.match(await outcome(ANONYMOUS, 'acme/frozen', ['push']), /^UNAUTHORIZED/, 'no write role: the plain refusal, not the state');
      // The token endpoint still grants writes the role allows, so that the write itself is refused
      // with the reason (403 read-only) rather than with a bare 401.
      assert.deepEqual(await a.access.grant(p.olga!, rn('acme/frozen'), ['pull', 'push', 'delete']), ['pull', 'push', 'delete']);
      assert.deepEqual(await a.access.grant(ANONYMOUS, rn('acme/frozen'), ['pull', 'push']), ['pull']);
      await repositories.setVisibility(repository, 'private');
      assert.match(await outcome(ANONYMOUS, 'acme/frozen', ['push']), /^UNAUTHORIZED/, 'a private read-only repository stays hidden');
      assert.match(await outcome(p.stranger!, 'acme/frozen', ['push']), /^DENIED: requested access/);
      await repositories.setState(repository, 'NORMAL');
      assert.equal(await outcome(p.ci!, 'acme/frozen', ['push', 'delete']), 'allowed');
    });

    it('accepts writes to a MIRROR repository only from its mirror robot', async () => {
      const { repository } = await repositories.create(rn('acme/mirrored'), { visibility: 'public' });
      await grantAll('acme/mirrored', { kind: 'robot', name: 'acme+mirror' }, 'write');
      await grantAll('acme/mirrored', { kind: 'robot', name: 'acme+ci' }, 'write');
      await repositories.setState(repository, 'MIRROR');
      await repositories.setMirrorRobot(repository, (p.mirror as Extract<Principal, { kind: 'robot' }>).id);
      assert.equal(await outcome(p.mirror!, 'acme/mirrored', ['pull', 'push']), 'allowed');
      assert.equal(await outcome(p.mirror!, 'acme/mirrored', ['delete']), 'allowed');
      const only = 'DENIED: repository acme/mirrored is a mirror; only its mirror robot may change it';
      for (const who of [p.ci!, p.olga!, p.sam!]) {
        assert.equal(await outcome(who, 'acme/mirrored', ['pull']), 'allowed');
        assert.equal(await outcome(who, 'acme/mirrored', ['push']), only);
        assert.equal(await outcome(who, 'acme/mirrored', ['delete']), only);
      }
      assert.match(await outcome(ANONYMOUS, 'acme/mirrored', ['push']), /^UNAUTHORIZED/, 'the robot could still authenticate');
      assert.equal(await outcome(ANONYMOUS, 'acme/mirrored', ['pull']), 'allowed');
      await a.grants.setRepositoryPermission(repository, { kind: 'robot', name: 'acme+mirror' }, 'read');
      assert.equal(await outcome(p.mirror!, 'acme/mirrored', ['push']), only, 'the mirror robot still needs write');
      await a.robots.delete('acme+mirror');
      assert.equal((await repositories.details(rn('acme/mirrored')))?.mirrorRobotId, null);
      await repositories.setState(repository, 'MARKED' as never);
      assert.equal(await outcome(p.olga!, 'acme/mirrored', ['push']), 'DENIED: repository acme/mirrored is in state MARKED and cannot be changed');
    });

    it('revokes access at once when a team is deleted or a member removed', async () => {
      await repositories.create(rn('acme/team-only'), { visibility: 'private' });
      await grantAll('acme/team-only', { kind: 'team', name: 'devs' }, 'write');
      assert.equal(await outcome(p.tom!, 'acme/team-only', ['pull', 'push']), 'allowed');
      await a.teams.removeMember('acme', 'devs', 'tom');
      assert.match(await outcome(p.tom!, 'acme/team-only', ['pull']), /^DENIED/);
      await a.teams.addMember('acme', 'devs', 'tom');
      assert.equal(await outcome(p.tom!, 'acme/team-only', ['pull']), 'allowed');
      await a.teams.deleteTeam('acme', 'devs');
      assert.match(await outcome(p.tom!, 'acme/team-only', ['pull']), /^DENIED/);
      const left = await a.grants.listRepositoryPermissions((await repositories.details(rn('acme/team-only')))!);
      assert.deepEqual(left.filter((x) => x.kind === 'team'), [], 'the team default and grant are gone');
      await a.teams.createTeam('acme', 'devs', { role: 'member' });
      await a.teams.addMember('acme', 'devs', 'tom');
      assert.match(await outcome(p.tom!, 'acme/team-only', ['pull']), /^DENIED/, 'a new team of the same name inherits nothing');
      assert.deepEqual(await a.grants.listDefaultPermissions('acme'), [{ kind: 'robot', name: 'acme+ci', role: 'read' }]);
    });

    it('revokes access at once when an admin leaves, a user is disabled, a superuser demoted, a robot or user deleted', async () => {
      await repositories.create(rn('acme/guarded'), { visibility: 'private' });
      await a.teams.addMember('acme', 'owners', 'stranger');
      assert.equal(await outcome(p.stranger!, 'acme/guarded', ['push']), 'allowed');
      await a.teams.removeMember('acme', 'owners', 'stranger');
      assert.match(await outcome(p.stranger!, 'acme/guarded', ['pull']), /^DENIED/);

      await a.accounts.setEnabled('olga', false);
      assert.match(await outcome(p.olga!, 'acme/guarded', ['pull']), /^DENIED/);
      await a.accounts.setEnabled('olga', true);
      assert.equal(await outcome(p.olga!, 'acme/guarded', ['pull']), 'allowed');

      await a.accounts.setSuperuser('sam', false);
      assert.match(await outcome(p.sam!, 'acme/guarded', ['pull']), /^DENIED/);
      await a.accounts.setSuperuser('sam', true);

      await grantAll('acme/guarded', { kind: 'robot', name: 'acme+ci' }, 'write');
      assert.equal(await outcome(p.ci!, 'acme/guarded', ['push']), 'allowed');
      await a.robots.delete('acme+ci');
      assert.match(await outcome(p.ci!, 'acme/guarded', ['pull']), /^DENIED/);
      await a.robots.create('acme', 'ci');
      const reborn = (await a.authenticator.principalFor('acme+ci'))!;
      assert.match(await outcome(reborn, 'acme/guarded', ['pull']), /^DENIED/, 'a new robot of the same name inherits nothing');

      await grantAll('acme/guarded', { kind: 'user', name: 'stranger' }, 'read');
      assert.equal(await outcome(p.stranger!, 'acme/guarded', ['pull']), 'allowed');
      await a.accounts.deleteUser('stranger');
      assert.match(await outcome(p.stranger!, 'acme/guarded', ['pull']), /^DENIED/);
      assert.deepEqual((await a.grants.listRepositoryPermissions((await repositories.details(rn('acme/guarded')))!)).filter((x) => x.kind === 'user'), []);
    });

    it('caps an API token by its scopes', async () => {
      const read = (await a.apiTokens.verify((await a.apiTokens.create('olga', { name: 'r', scopes: ['repo:read'] })).secret))!.principal;
      const write = (await a.apiTokens.verify((await a.apiTokens.create('olga', { name: 'w', scopes: ['repo:write'] })).secret))!.principal;
      const create = (await a.apiTokens.verify((await a.apiTokens.create('olga', { name: 'c', scopes: ['repo:write', 'repo:create'] })).secret))!.principal;
      const none = (await a.apiTokens.verify((await a.apiTokens.create('olga', { name: 'u', scopes: ['user:read'] })).secret))!.principal;
      assert.equal(await outcome(read, 'acme/guarded', ['pull']), 'allowed');
      assert.match(await outcome(read, 'acme/guarded', ['push']), /^DENIED/);
      assert.equal(await outcome(write, 'acme/guarded', ['pull', 'push', 'delete']), 'allowed');
      assert.match(await outcome(write, 'acme/by-write-token', ['push']), /^DENIED/, 'creating needs repo:create');
      assert.equal(await outcome(create, 'acme/by-create-token', ['push']), 'allowed');
      assert.match(await outcome(none, 'acme/guarded', ['pull']), /^DENIED/);
      assert.equal(await a.permissions.canAdminNamespace(write, 'acme'), false);
    });

    it('validates grants: subjects must exist and belong to the repository namespace', async () => {
      await a.accounts.createUser({ name: 'gina' });
      await a.accounts.createOrganization({ name: 'globex', creator: 'gina' });
      await a.robots.create('globex', 'bot');
      await a.teams.createTeam('globex', 'ops', { role: 'member' });
      const repo = (await repositories.details(rn('acme/guarded')))!;
      await assert.rejects(a.grants.setRepositoryPermission(repo, { kind: 'robot', name: 'globex+bot' }, 'read'), /belongs to another namespace/);
      await assert.rejects(a.grants.setRepositoryPermission(repo, { kind: 'team', name: 'ops' }, 'read'), /not found in acme/);
      await assert.rejects(a.grants.setRepositoryPermission(repo, { kind: 'user', name: 'nobody' }, 'read'), /user nobody not found/);
      await assert.rejects(a.grants.setRepositoryPermission(repo, { kind: 'user', name: 'gina' }, 'owner' as never), /invalid role/);
      await assert.rejects(a.grants.setRepositoryPermission(repo, { kind: 'group', name: 'x' } as never, 'read'), /invalid subject kind/);
      await a.grants.setRepositoryPermission(repo, { kind: 'user', name: 'gina' }, 'read');
      assert.equal(await a.grants.getRepositoryPermission(repo, { kind: 'user', name: 'gina' }), 'read');
      await a.grants.deleteRepositoryPermission(repo, { kind: 'user', name: 'gina' });
      await assert.rejects(a.grants.deleteRepositoryPermission(repo, { kind: 'user', name: 'gina' }), /has no permission/);
      await assert.rejects(a.grants.setDefaultPermission('gina', { kind: 'user', name: 'olga' }, 'read'), /organization gina not found/);
      await a.grants.setDefaultPermission('globex', { kind: 'user', name: 'olga' }, 'read');
      await a.grants.deleteDefaultPermission('globex', { kind: 'user', name: 'olga' });
      await assert.rejects(a.grants.deleteDefaultPermission('globex', { kind: 'user', name: 'olga' }), /no default permission/);
    });
  });
}
