/** Robot tokens kept sealed for their administrators, federation entries, and robots on teams (both dialects). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { RepositoryStore } from '../../db/repository-store.js';
import { createAccounts } from '../../main/compose-accounts.js';
import type { RepositoryName } from '../../oci/reference.js';
import { SecretBox } from '../proxy/secret-box.js';
import { RepositoryService } from '../repositories.js';
import { isAccountError } from './account-error.js';
import type { Accounts } from './accounts.js';

for (const dialect of DIALECTS) {
  describe(`robot service (${dialect})`, () => {
    let h: DatabaseHandle;
    let repositories: RepositoryService;
    const keyA = new SecretBox(randomBytes(32));
    const keyB = new SecretBox(randomBytes(32));
    const withKey = (box?: SecretBox): Accounts => createAccounts(h.db, h.dialect, repositories, box ? { secrets: async () => box } : {});
    before(async () => {
      h = await openTestDatabase(dialect);
      repositories = new RepositoryService(new RepositoryStore(h.db, h.dialect));
      const a = withKey();
      await a.accounts.createUser({ name: 'owner', password: 'owner-password' });
      await a.accounts.createOrganization({ name: 'acme', creator: 'owner' });
    });
    after(async () => h.close());

    it('keeps the token sealed for its administrators; another key or none cannot read it, and logins work either way', async () => {
      const a = withKey(keyA);
      const { token } = await a.robots.create('acme', 'ci');
      assert.equal(await a.robots.token('acme+ci'), token);
      const row = await h.db.selectFrom('robots').select(['token_enc', 'token_hash']).where('name', '=', 'ci').executeTakeFirstOrThrow();
      assert.ok(row.token_enc?.startsWith('v1:') && !row.token_enc.includes(token), 'stored sealed, never in clear');

      const b = withKey(keyB);
      assert.equal(await b.robots.token('acme+ci'), undefined, 'sealed with another key');
      assert.ok(await b.robots.verify('acme+ci', token), 'the login does not need the key');
      assert.equal(await withKey().robots.token('acme+ci'), undefined, 'no key at hand');
      assert.equal(await a.robots.token('acme+nosuch'), undefined);
      assert.equal(await a.robots.token('not a robot'), undefined);

      const { token: renewed } = await b.robots.regenerate('acme+ci');
      assert.equal(await b.robots.token('acme+ci'), renewed);
      assert.equal(await a.robots.token('acme+ci'), undefined);
      assert.equal(await a.robots.verify('acme+ci', token), undefined, 'the old token stops working');

      // A robot made without a key works and shows no token until it is regenerated with one.
      const plain = withKey();
      const { token: t2 } = await plain.robots.create('acme', 'legacy');
      assert.equal(await a.robots.token('acme+legacy'), undefined);
      assert.ok(await a.robots.verify('acme+legacy', t2));
      const failing = createAccounts(h.db, h.dialect, repositories, { secrets: async () => Promise.reject(new Error('no key file')) });
      const { token: t3 } = await failing.robots.create('acme', 'keyless');
      assert.ok(await failing.robots.verify('acme+keyless', t3), 'a key that cannot be loaded does not stop robots');
    });

    it('a sealed copy that no longer matches the token hash is not shown', async () => {
      const a = withKey(keyA);
      await a.robots.create('acme', 'swapped');
      const other = await h.db.selectFrom('robots').select('token_enc').where('name', '=', 'legacy').executeTakeFirstOrThrow();
      const mine = await h.db.selectFrom('robots').select('token_enc').where('name', '=', 'swapped').executeTakeFirstOrThrow();
      await h.db.updateTable('robots').set({ token_enc: mine.token_enc }).where('name', '=', 'legacy').execute();
      assert.equal(await a.robots.token('acme+legacy'), undefined);
      assert.equal(other.token_enc, null);
    });

    it('stores federation entries in order, replaces them whole, and refuses what Quay refuses', async () => {
      const a = withKey(keyA);
      const entries = [
        { issuer: 'https://b.example.com', subject: 'one' },
        { issuer: 'http://a.example.com', subject: 'two' },
      ];
      assert.deepEqual(await a.robots.setFederation('acme+ci', entries), entries);
      assert.deepEqual(await a.robots.federation('acme+ci'), entries);
      assert.deepEqual(await a.robots.setFederation('acme+ci', [entries[1]!]), [entries[1]]);
      assert.deepEqual(await a.robots.federation('acme+ci'), [entries[1]]);
      for (const bad of [[{ issuer: '', subject: 's' }], [{ issuer: 'ftp://x', subject: 's' }], [entries[0]!, entries[0]!], Array.from({ length: 101 }, (_, i) => ({ issuer: 'https://x', subject: `s${i}` }))]) {
        await assert.rejects(a.robots.setFederation('acme+ci', bad), (err) => isAccountError(err) && err.type === 'invalid_request');
      }
      await assert.rejects(a.robots.federation('acme+nosuch'), (err) => isAccountError(err) && err.type === 'not_found');
      await a.robots.delete('acme+ci');
      assert.equal(Number((await h.db.selectFrom('robot_federations').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 0, 'entries go with their robot');
    });

    it('puts robots of the organization on teams; they get the team’s grants, not its role', async () => {
      const a = withKey(keyA);
      await a.teams.createTeam('acme', 'admins', { role: 'admin' });
      const { robot } = await a.robots.create('acme', 'deployer');
      assert.equal(await a.teams.addMember('acme', 'admins', 'acme+deployer'), true);
      assert.equal(await a.teams.addMember('acme', 'admins', 'acme+deployer'), false);
      const { repository } = await repositories.create('acme/app' as RepositoryName, { visibility: 'private' });
      const principal = { kind: 'robot' as const, id: robot.id, name: robot.name, namespaceId: repository.namespaceId };
      assert.equal(await a.permissions.roleOn(principal, repository), undefined, 'an admin team gives a robot no organization role');
      await a.grants.setRepositoryPermission(repository, { kind: 'team', name: 'admins' }, 'read');
      assert.equal(await a.permissions.roleOn(principal, repository), 'read');
      await a.accounts.createUser({ name: 'outsider', password: 'outsider-password' });
      await a.accounts.createOrganization({ name: 'other', creator: 'outsider' });
      await a.robots.create('other', 'bot');
      await assert.rejects(a.teams.addMember('acme', 'admins', 'other+bot'), (err) => isAccountError(err) && err.type === 'invalid_request');
      await assert.rejects(a.teams.addMember('acme', 'admins', 'acme+ghost'), (err) => isAccountError(err) && err.type === 'not_found');
      await a.teams.deleteTeam('acme', 'admins').catch(() => undefined);
      await a.robots.delete('acme+deployer');
      assert.equal(Number((await h.db.selectFrom('team_robot_members').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 0, 'memberships go with the robot');
      assert.equal(await a.permissions.roleOn(principal, repository), undefined);
    });
  });
}
