import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { RepositoryStore } from '../../db/repository-store.js';
import type { RepositoryName } from '../../oci/reference.js';
import { RepositoryService } from '../repositories.js';
import { isAccountError, type AccountErrorType } from './account-error.js';
import { createAccounts } from '../../main/compose-accounts.js';
import type { Accounts } from './accounts.js';

const fails = async (p: Promise<unknown>, type: AccountErrorType, pattern?: RegExp) =>
  assert.rejects(p, (err) => isAccountError(err) && err.type === type && (pattern === undefined || pattern.test(err.message)));

for (const dialect of DIALECTS) {
  describe(`account services (${dialect})`, () => {
    let h: DatabaseHandle;
    let a: Accounts;
    let repositories: RepositoryService;
    let clock = 1_900_000_000_000;
    before(async () => {
      h = await openTestDatabase(dialect);
      repositories = new RepositoryService(new RepositoryStore(h.db, h.dialect));
      a = createAccounts(h.db, h.dialect, repositories, { now: () => clock });
    });
    after(async () => h.close());

    it('creates users with validated names, emails and passwords; never hands out the hash', async () => {
      const u = await a.accounts.createUser({ name: 'alice', password: 'alice-password', email: 'alice@example.com' });
      assert.deepEqual({ ...u, id: 0, createdAt: 0 }, { id: 0, name: 'alice', email: 'alice@example.com', enabled: true, superuser: false, hasPassword: true, createdAt: 0 });
      assert.ok(!('passwordHash' in u));
      await fails(a.accounts.createUser({ name: 'alice' }), 'conflict');
      await fails(a.accounts.createUser({ name: 'Alice' }), 'invalid_request');
      await fails(a.accounts.createUser({ name: 'bob', password: 'short' }), 'invalid_request', /8 to 1024/);
      await fails(a.accounts.createUser({ name: 'bob', email: 'nope' }), 'invalid_request');
      const robotless = await a.accounts.createUser({ name: 'nopass' });
      assert.equal(robotless.hasPassword, false);
      assert.equal((await a.accounts.getUser('alice'))?.email, 'alice@example.com');
      assert.equal(await a.accounts.getUser('nobody'), undefined);
      assert.equal(await a.accounts.getUser('NOT VALID'), undefined);
      assert.deepEqual((await a.accounts.listUsers({ limit: 10 })).map((x) => x.name), ['alice', 'nopass']);
      assert.equal(await a.accounts.countUsers(), 2);
    });

    it('verifies passwords: right, wrong, unknown user, no password, disabled', async () => {
      const p = await a.accounts.verifyPassword('alice', 'alice-password');
      assert.deepEqual({ ...p, id: 0 }, { kind: 'user', id: 0, name: 'alice', superuser: false });
      assert.equal(await a.accounts.verifyPassword('alice', 'wrong-password'), undefined);
      assert.equal(await a.accounts.verifyPassword('nobody', 'alice-password'), undefined);
      assert.equal(await a.accounts.verifyPassword('nopass', ''), undefined);
      assert.equal(await a.accounts.verifyPassword('../../etc', 'x'), undefined);
      await a.accounts.setEnabled('alice', false);
      assert.equal(await a.accounts.verifyPassword('alice', 'alice-password'), undefined);
      await a.accounts.setEnabled('alice', true);
      await a.accounts.setPassword('alice', 'a-new-password');
      assert.equal(await a.accounts.verifyPassword('alice', 'alice-password'), undefined);
      assert.ok(await a.accounts.verifyPassword('alice', 'a-new-password'));
      await a.accounts.setPassword('alice', null);
      assert.equal(await a.accounts.verifyPassword('alice', 'a-new-password'), undefined);
      await a.accounts.setPassword('alice', 'alice-password');
      await fails(a.accounts.setPassword('nobody', 'whatever-long'), 'not_found');
    });

    it('spends a password hash on unknown users too (no timing oracle for user names)', async () => {
      const time = async (name: string) => {
        const start = process.hrtime.bigint();
        await a.accounts.verifyPassword(name, 'not-the-password');
        return Number(process.hrtime.bigint() - start) / 1e6;
      };
      await time('nobody');
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 3; i++) {
        known.push(await time('alice'));
        unknown.push(await time(`nobody${i}`));
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[1]!;
      assert.ok(median(unknown) > median(known) * 0.4, `unknown ${median(unknown)}ms vs known ${median(known)}ms`);
    });

    it('creates organizations with the creator as admin; updates, lists and deletes them', async () => {
      const org = await a.accounts.createOrganization({ name: 'acme', email: 'ops@acme.io', creator: 'alice' });
      assert.equal(org.name, 'acme');
      await fails(a.accounts.createOrganization({ name: 'acme', creator: 'alice' }), 'conflict');
      await fails(a.accounts.createOrganization({ name: 'alice', creator: 'alice' }), 'conflict');
      await fails(a.accounts.createOrganization({ name: 'x', creator: 'alice' }), 'invalid_request');
      await fails(a.accounts.createOrganization({ name: 'other', creator: 'nobody' }), 'not_found');
      assert.deepEqual((await a.teams.listTeams('acme')).map((t) => [t.name, t.role, t.memberCount]), [['owners', 'admin', 1]]);
      assert.deepEqual(await a.teams.listMembers('acme', 'owners'), ['alice']);
      assert.equal((await a.accounts.updateOrganization('acme', { email: 'root@acme.io' })).email, 'root@acme.io');
      assert.deepEqual((await a.accounts.organizationsOf('alice')).map((o) => o.name), ['acme']);
      assert.deepEqual((await a.accounts.listOrganizations({ limit: 10 })).map((o) => o.name), ['acme']);
      assert.equal(await a.accounts.getOrganization('alice'), undefined);
      await a.accounts.createOrganization({ name: 'tmp-org', creator: 'alice' });
      await a.accounts.deleteOrganization('tmp-org');
      assert.equal(await a.accounts.getOrganization('tmp-org'), undefined);
      await fails(a.accounts.deleteOrganization('tmp-org'), 'not_found');
      await fails(a.accounts.deleteOrganization('alice'), 'not_found');
    });

    it('manages teams and membership, keeping an administrator', async () => {
      await a.accounts.createUser({ name: 'bob' });
      const devs = await a.teams.createTeam('acme', 'devs', { role: 'member', description: 'developers' });
      assert.deepEqual([devs.organization, devs.name, devs.role, devs.description], ['acme', 'devs', 'member', 'developers']);
      await fails(a.teams.createTeam('acme', 'devs', { role: 'member' }), 'conflict');
      await fails(a.teams.createTeam('acme', 'Dev-s', { role: 'member' }), 'invalid_request');
      await fails(a.teams.createTeam('acme', 'ops', { role: 'owner' as never }), 'invalid_request');
      await fails(a.teams.createTeam('alice', 'ops', { role: 'member' }), 'not_found');
      assert.equal(await a.teams.addMember('acme', 'devs', 'bob'), true);
      assert.equal(await a.teams.addMember('acme', 'devs', 'bob'), false);
      await fails(a.teams.addMember('acme', 'devs', 'nobody'), 'not_found');
      await fails(a.teams.addMember('acme', 'nope', 'bob'), 'not_found');
      assert.deepEqual(await a.teams.listMembers('acme', 'devs'), ['bob']);
      assert.deepEqual((await a.teams.teamsOf('bob')).map((t) => `${t.organization}/${t.name}`), ['acme/devs']);
      assert.equal((await a.teams.updateTeam('acme', 'devs', { role: 'creator' })).role, 'creator');
      assert.equal((await a.teams.updateTeam('acme', 'devs', { description: null })).description, null);
      await fails(a.teams.removeMember('acme', 'owners', 'alice'), 'conflict', /without an administrator/);
      await fails(a.teams.updateTeam('acme', 'owners', { role: 'member' }), 'conflict');
      await fails(a.teams.deleteTeam('acme', 'owners'), 'conflict');
      await fails(a.teams.removeMember('acme', 'devs', 'alice'), 'not_found');
      await fails(a.accounts.deleteUser('alice'), 'conflict', /only administrator of acme/);
      await a.teams.removeMember('acme', 'devs', 'bob');
      assert.deepEqual(await a.teams.listMembers('acme', 'devs'), []);
      assert.equal((await a.teams.getTeam('acme', 'devs'))?.role, 'creator');
      await a.teams.deleteTeam('acme', 'devs');
      assert.equal(await a.teams.getTeam('acme', 'devs'), undefined);
    });

    it('creates robots with a token shown once; regenerating stops the old token; deleting stops all', async () => {
      const { robot, token } = await a.robots.create('acme', 'ci', { description: 'CI pushes' });
      assert.deepEqual([robot.name, robot.namespace, robot.shortName, robot.description], ['acme+ci', 'acme', 'ci', 'CI pushes']);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(!JSON.stringify(await a.robots.list('acme')).includes(token));
      assert.ok(!('tokenHash' in (await a.robots.get('acme+ci'))!));
      await fails(a.robots.create('acme', 'ci'), 'conflict');
      await fails(a.robots.create('acme', 'CI'), 'invalid_request');
      await fails(a.robots.create('nowhere', 'ci'), 'not_found');
      const p = await a.robots.verify('acme+ci', token);
      assert.deepEqual({ ...p, id: 0, namespaceId: 0 }, { kind: 'robot', id: 0, name: 'acme+ci', namespaceId: 0 });
      assert.equal(await a.robots.verify('acme+ci', token.slice(1)), undefined);
      assert.equal(await a.robots.verify('acme+cd', token), undefined);
      assert.equal(await a.robots.verify('acme', token), undefined);
      const again = await a.robots.regenerate('acme+ci');
      assert.notEqual(again.token, token);
      assert.equal(await a.robots.verify('acme+ci', token), undefined);
      assert.ok(await a.robots.verify('acme+ci', again.token));
      const personal = await a.robots.create('alice', 'laptop');
      assert.ok(await a.robots.verify('alice+laptop', personal.token));
      await a.accounts.setEnabled('alice', false);
      assert.equal(await a.robots.verify('alice+laptop', personal.token), undefined, 'robots of a disabled user are disabled');
      await a.accounts.setEnabled('alice', true);
      await a.robots.delete('acme+ci');
      assert.equal(await a.robots.verify('acme+ci', again.token), undefined);
      await fails(a.robots.delete('acme+ci'), 'not_found');
      await fails(a.robots.regenerate('acme+ci'), 'not_found');
      assert.deepEqual((await a.robots.list('alice')).map((r) => r.name), ['alice+laptop']);
    });

    it('issues API tokens shown once, scoped, expiring and revocable', async () => {
      const { token, secret } = await a.apiTokens.create('bob', { name: 'ci', scopes: ['repo:write', 'repo:read'], expiresAt: clock + 60_000 });
      assert.deepEqual([token.name, token.scopes, token.expiresAt], ['ci', ['repo:read', 'repo:write'], clock + 60_000]);
      assert.ok(!JSON.stringify(await a.apiTokens.list('bob')).includes(secret));
      const v = await a.apiTokens.verify(secret);
      assert.deepEqual(v?.principal, { kind: 'user', id: v!.principal.id, name: 'bob', superuser: false, tokenScopes: ['repo:read', 'repo:write'] });
      assert.equal((await a.apiTokens.list('bob'))[0]?.lastUsedAt, clock);
      assert.equal(await a.apiTokens.verify(secret + 'x'), undefined);
      assert.equal(await a.apiTokens.verify(''), undefined);
      clock += 60_000;
      assert.equal(await a.apiTokens.verify(secret), undefined, 'expired');
      const forever = await a.apiTokens.create('bob', { name: 'forever', scopes: ['repo:read'] });
      assert.ok(await a.apiTokens.verify(forever.secret));
      await fails(a.apiTokens.revoke('alice', forever.token.id), 'not_found');
      await a.apiTokens.revoke('bob', forever.token.id);
      assert.equal(await a.apiTokens.verify(forever.secret), undefined, 'revoked');
      await fails(a.apiTokens.revoke('bob', forever.token.id), 'not_found');
      await fails(a.apiTokens.create('bob', { name: 'x', scopes: ['repo:everything'] }), 'invalid_request');
      await fails(a.apiTokens.create('bob', { name: 'x', scopes: [] }), 'invalid_request');
      await fails(a.apiTokens.create('bob', { name: '', scopes: ['repo:read'] }), 'invalid_request');
      await fails(a.apiTokens.create('bob', { name: 'x', scopes: ['repo:read'], expiresAt: clock - 1 }), 'invalid_request');
      await fails(a.apiTokens.create('nobody', { name: 'x', scopes: ['repo:read'] }), 'not_found');
      const live = await a.apiTokens.create('bob', { name: 'live', scopes: ['repo:read'] });
      await a.accounts.setEnabled('bob', false);
      assert.equal(await a.apiTokens.verify(live.secret), undefined, 'a disabled user’s tokens do not work');
      await a.accounts.setEnabled('bob', true);
      assert.deepEqual((await a.apiTokens.list('bob')).map((t) => t.name), ['live', 'forever', 'ci']);
    });

    it('authenticates passwords, robot tokens and API tokens through one door', async () => {
      const robot = await a.robots.create('acme', 'deploy');
      const api = await a.apiTokens.create('alice', { name: 'cli', scopes: ['repo:read'] });
      const bob = await a.apiTokens.create('bob', { name: 'cli', scopes: ['repo:admin'] });
      assert.equal((await a.authenticator.authenticate('alice', 'alice-password'))?.method, 'password');
      assert.equal((await a.authenticator.authenticate('acme+deploy', robot.token))?.method, 'robot_token');
      const viaToken = await a.authenticator.authenticate('$token', api.secret);
      assert.deepEqual([viaToken?.method, viaToken?.principal.name, viaToken?.tokenId], ['api_token', 'alice', api.token.id]);
      assert.equal((await a.authenticator.authenticate('alice', api.secret))?.method, 'api_token');
      assert.equal(await a.authenticator.authenticate('alice', bob.secret), undefined, "someone else's token");
      assert.equal(await a.authenticator.authenticate('$token', 'alice-password'), undefined);
      assert.equal(await a.authenticator.authenticate('alice', 'wrong-password'), undefined);
      assert.equal(await a.authenticator.authenticate('acme+deploy', 'alice-password'), undefined);
      assert.equal(await a.authenticator.authenticate('nobody', 'whatever'), undefined);
      assert.equal((await a.authenticator.principalFor('acme+deploy'))?.kind, 'robot');
      assert.equal((await a.authenticator.principalFor('alice'))?.kind, 'user');
      assert.equal(await a.authenticator.principalFor('acme'), undefined, 'an organization is not a principal');
      assert.equal(await a.authenticator.principalFor('acme+gone'), undefined);
      await a.accounts.setEnabled('bob', false);
      assert.equal(await a.authenticator.principalFor('bob'), undefined);
      await a.accounts.setEnabled('bob', true);
    });

    it('deletes a user with their namespace, robots, tokens and grants', async () => {
      const carol = await a.accounts.createUser({ name: 'carol', password: 'carol-password' });
      const tok = await a.apiTokens.create('carol', { name: 't', scopes: ['repo:read'] });
      const bot = await a.robots.create('carol', 'bot');
      await repositories.create('carol/own' as RepositoryName, { visibility: 'private' });
      const { repository } = await repositories.create('acme/shared' as RepositoryName, { visibility: 'private' });
      await a.grants.setRepositoryPermission(repository, { kind: 'user', name: 'carol' }, 'write');
      await a.teams.createTeam('acme', 'qa', { role: 'member' });
      await a.teams.addMember('acme', 'qa', 'carol');
      await a.accounts.deleteUser('carol');
      assert.equal(await a.accounts.getUser('carol'), undefined);
      assert.equal(await a.apiTokens.verify(tok.secret), undefined);
      assert.equal(await a.robots.verify('carol+bot', bot.token), undefined);
      assert.equal(await repositories.details('carol/own' as RepositoryName), undefined);
      assert.deepEqual(await a.grants.listRepositoryPermissions(repository), []);
      assert.deepEqual(await a.teams.listMembers('acme', 'qa'), []);
      assert.ok(carol.id > 0);
      await fails(a.accounts.deleteUser('carol'), 'not_found');
    });
  });
}
