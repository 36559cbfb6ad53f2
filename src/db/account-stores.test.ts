import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../oci/digest.js';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { ApiTokenStore } from './api-token-store.js';
import { AuditLogStore } from './audit-log-store.js';
import type { DatabaseHandle } from './connect.js';
import { DefaultPermissionStore } from './default-permission-store.js';
import { ManifestStore } from './manifest-store.js';
import { NamespaceStore } from './namespace-store.js';
import { OrganizationStore } from './organization-store.js';
import { PermissionStore } from './permission-store.js';
import { RepositoryStore } from './repository-store.js';
import { RobotStore } from './robot-store.js';
import { SigningKeyStore } from './signing-key-store.js';
import { TeamStore } from './team-store.js';
import { UserStore } from './user-store.js';

for (const dialect of DIALECTS) {
  describe(`account stores (${dialect})`, () => {
    let h: DatabaseHandle;
    let namespaces: NamespaceStore;
    let users: UserStore;
    let orgs: OrganizationStore;
    let teams: TeamStore;
    let robots: RobotStore;
    let perms: PermissionStore;
    let defaults: DefaultPermissionStore;
    let repos: RepositoryStore;
    before(async () => {
      h = await openTestDatabase(dialect);
      namespaces = new NamespaceStore(h.db, h.dialect);
      users = new UserStore(h.db, h.dialect);
      orgs = new OrganizationStore(h.db, h.dialect);
      teams = new TeamStore(h.db, h.dialect);
      robots = new RobotStore(h.db, h.dialect);
      perms = new PermissionStore(h.db, h.dialect);
      defaults = new DefaultPermissionStore(h.db);
      repos = new RepositoryStore(h.db, h.dialect);
    });
    after(async () => h.close());

    const user = async (name: string, extra: { superuser?: boolean } = {}) =>
      (await users.create({ name, email: null, passwordHash: null, superuser: extra.superuser ?? false }))!;
    const repo = async (ns: string, name: string, visibility = 'private') => (await repos.create(ns, name, { visibility }))!.repository;

    it('creates users with their namespace; users and organizations share one space of names', async () => {
      const u = await users.create({ name: 'ann', email: 'ann@example.com', passwordHash: 'scrypt$x', superuser: true });
      assert.ok(u);
      assert.deepEqual({ ...u, id: 0, namespaceId: 0, createdAt: 0 }, { id: 0, namespaceId: 0, name: 'ann', email: 'ann@example.com', enabled: true, superuser: true, passwordHash: 'scrypt$x', createdAt: 0 });
      assert.equal((await namespaces.findByName('ann'))?.kind, 'user');
      assert.deepEqual(await users.findById(u.id), u);
      assert.equal(await users.create({ name: 'ann', email: null, passwordHash: null, superuser: false }), undefined);
      assert.equal(await orgs.create({ name: 'ann', email: null, creatorUserId: u.id }), undefined);
      assert.ok(await orgs.create({ name: 'annorg', email: null, creatorUserId: u.id }));
      assert.equal(await users.create({ name: 'annorg', email: null, passwordHash: null, superuser: false }), undefined);
      assert.equal(await users.setPasswordHash(u.id, null), true);
      assert.equal(await users.setSuperuser(u.id, false), true);
      assert.equal(await namespaces.setEnabled(u.namespaceId, false), true);
      const changed = await users.findByName('ann');
      assert.deepEqual([changed?.passwordHash, changed?.superuser, changed?.enabled], [null, false, false]);
      assert.ok((await users.count()) >= 1);
      const page = await users.list({ limit: 1000 });
      assert.ok(page.some((x) => x.name === 'ann') && !page.some((x) => x.name === 'annorg'));
    });

    it('creates an organization with an owners team holding its creator', async () => {
      const creator = await user('olive');
      const org = await orgs.create({ name: 'olive-co', email: 'ops@olive.co', creatorUserId: creator.id });
      assert.ok(org);
      assert.equal((await namespaces.findByName('olive-co'))?.kind, 'org');
      const owners = await teams.find(org.id, 'owners');
      assert.equal(owners?.role, 'admin');
      assert.deepEqual(await teams.members(owners!.id), [{ userId: creator.id, name: 'olive' }]);
      assert.deepEqual((await orgs.listForMember(creator.id)).map((o) => o.name), ['olive-co']);
      assert.equal(await orgs.setEmail(org.id, null), true);
      assert.equal((await orgs.find('olive-co'))?.email, null);
      assert.equal(await orgs.find('olive'), undefined, 'a user is not an organization');
    });

    it('keeps at least one administrator in an organization', async () => {
      const a = await user('adam');
      const b = await user('bea');
      const org = (await orgs.create({ name: 'guarded', email: null, creatorUserId: a.id }))!;
      const owners = (await teams.find(org.id, 'owners'))!;
      assert.equal(await teams.removeMember(owners.id, a.id), 'last_admin');
      assert.equal(await teams.update(owners.id, { role: 'member' }), 'last_admin');
      assert.equal(await teams.delete(owners.id), 'last_admin');
      assert.deepEqual(await teams.soleAdminOrganizations(a.id), ['guarded']);
      const admins2 = (await teams.create(org.id, { name: 'admins', role: 'admin', description: null }))!;
      assert.equal(await teams.create(org.id, { name: 'admins', role: 'member', description: null }), undefined);
      assert.equal(await teams.addMember(admins2.id, b.id), true);
      assert.equal(await teams.addMember(admins2.id, b.id), false);
      assert.deepEqual(await teams.soleAdminOrganizations(a.id), []);
      assert.equal(await teams.removeMember(owners.id, a.id), 'ok');
      assert.equal(await teams.removeMember(owners.id, a.id), 'not_found');
      assert.equal(await teams.update(owners.id, { role: 'creator', description: 'was owners' }), 'ok');
      assert.deepEqual(await teams.rolesIn(org.id, b.id), ['admin']);
      assert.equal(await teams.delete(admins2.id), 'last_admin');
      assert.equal(await teams.delete(99_999_999), 'not_found');
      const listed = await teams.list(org.id);
      assert.deepEqual(listed.map((t) => [t.name, t.role, t.memberCount]), [['admins', 'admin', 1], ['owners', 'creator', 0]]);
      assert.deepEqual((await teams.teamsOfUser(b.id)).map((t) => [t.organization, t.name]), [['guarded', 'admins']]);
    });

    it('refuses concurrent removals that together would remove every administrator', async () => {
      const a = await user('race-a');
      const b = await user('race-b');
      const org = (await orgs.create({ name: 'race-org', email: null, creatorUserId: a.id }))!;
      const owners = (await teams.find(org.id, 'owners'))!;
      await teams.addMember(owners.id, b.id);
      const results = await Promise.all([teams.removeMember(owners.id, a.id), teams.removeMember(owners.id, b.id)]);
      assert.deepEqual([...results].sort(), ['last_admin', 'ok']);
      assert.equal((await teams.members(owners.id)).length, 1);
    });

    it('stores robots by short name and deletes their grants with them', async () => {
      const owner = await user('rob-owner');
      const org = (await orgs.create({ name: 'robco', email: null, creatorUserId: owner.id }))!;
      const r = await robots.create(org.id, { shortName: 'ci', description: 'CI', tokenHash: 'h1' });
      assert.ok(r);
      assert.deepEqual([r.name, r.namespace, r.shortName, r.tokenHash, r.namespaceEnabled], ['robco+ci', 'robco', 'ci', 'h1', true]);
      assert.equal(await robots.create(org.id, { shortName: 'ci', description: null, tokenHash: 'h2' }), undefined);
      assert.deepEqual(await robots.find('robco', 'ci'), r);
      assert.equal(await robots.setTokenHash(r.id, 'h3'), true);
      assert.equal((await robots.findById(r.id))?.tokenHash, 'h3');
      const app = await repo('robco', 'app');
      await perms.set(app.id, { kind: 'robot', id: r.id }, 'write');
      await defaults.set(org.id, { kind: 'robot', id: r.id }, 'read');
      await repos.setMirrorRobot(app.id, r.id);
      assert.equal(await robots.delete(r.id), true);
      assert.equal(await robots.delete(r.id), false);
      assert.equal(await perms.get(app.id, { kind: 'robot', id: r.id }), undefined);
      assert.deepEqual(await defaults.list(org.id), []);
      assert.equal((await repos.findDetails('robco', 'app'))?.mirrorRobotId, null);
      assert.deepEqual(await robots.list(org.id), []);
    });

    it('grants, lists with names, and revokes repository permissions', async () => {
      const owner = await user('perm-owner');
      const other = await user('perm-user');
      const org = (await orgs.create({ name: 'permco', email: null, creatorUserId: owner.id }))!;
      const team = (await teams.create(org.id, { name: 'devs', role: 'member', description: null }))!;
      const bot = (await robots.create(org.id, { shortName: 'bot', description: null, tokenHash: 'x' }))!;
      const app = await repo('permco', 'app');
      await perms.set(app.id, { kind: 'user', id: other.id }, 'read');
      await perms.set(app.id, { kind: 'user', id: other.id }, 'write');
      await perms.set(app.id, { kind: 'team', id: team.id }, 'admin');
      await perms.set(app.id, { kind: 'robot', id: bot.id }, 'read');
      assert.deepEqual(
        (await perms.listForRepository(app.id)).map((p) => [p.kind, p.name, p.role]),
        [['user', 'perm-user', 'write'], ['team', 'devs', 'admin'], ['robot', 'permco+bot', 'read']],
      );
      assert.deepEqual(await perms.userRoles(app.id, other.id), ['write']);
      await teams.addMember(team.id, other.id);
      assert.deepEqual((await perms.userRoles(app.id, other.id)).sort(), ['admin', 'write']);
      assert.equal(await perms.delete(app.id, { kind: 'user', id: other.id }), true);
      assert.equal(await perms.delete(app.id, { kind: 'user', id: other.id }), false);
      assert.equal(await teams.delete(team.id), 'ok');
      assert.deepEqual(await perms.userRoles(app.id, other.id), []);
      assert.deepEqual((await perms.listForRepository(app.id)).map((p) => p.name), ['permco+bot']);
    });

    it('applies default permissions and the creator grant when creating a repository, in one go', async () => {
      const owner = await user('def-owner');
      const creator = await user('def-creator');
      const reader = await user('def-reader');
      const org = (await orgs.create({ name: 'defco', email: null, creatorUserId: owner.id }))!;
      const team = (await teams.create(org.id, { name: 'readers', role: 'member', description: null }))!;
      await defaults.set(org.id, { kind: 'team', id: team.id }, 'read');
      await defaults.set(org.id, { kind: 'user', id: reader.id }, 'write');
      await defaults.set(org.id, { kind: 'user', id: creator.id }, 'read');
      assert.deepEqual((await defaults.list(org.id)).map((p) => [p.kind, p.name, p.role]), [
        ['user', 'def-creator', 'read'],
        ['user', 'def-reader', 'write'],
        ['team', 'readers', 'read'],
      ]);
      const made = await repos.create('defco', 'app', { visibility: 'public', description: 'the app', creator: { kind: 'user', id: creator.id } });
      assert.ok(made?.created);
      assert.deepEqual(
        { ...made.repository, id: 0, createdAt: 0 },
        { id: 0, namespace: 'defco', name: 'app', namespaceId: org.id, namespaceKind: 'org', visibility: 'public', state: 'NORMAL', mirrorRobotId: null, description: 'the app', createdAt: 0 },
      );
      assert.deepEqual((await perms.listForRepository(made.repository.id)).map((p) => [p.name, p.role]), [
        ['def-creator', 'admin'],
        ['def-reader', 'write'],
        ['readers', 'read'],
      ]);
      const again = await repos.create('defco', 'app', { visibility: 'private' });
      assert.deepEqual([again?.created, again?.repository.id, again?.repository.visibility], [false, made.repository.id, 'public']);
      assert.equal(await repos.create('nosuchns', 'app', { visibility: 'private' }), undefined);
      await defaults.delete(org.id, { kind: 'user', id: reader.id });
      const later = (await repos.create('defco', 'later', { visibility: 'private' }))!;
      assert.deepEqual((await perms.listForRepository(later.repository.id)).map((p) => p.name), ['def-creator', 'readers']);
      const racing = await Promise.all(Array.from({ length: 8 }, () => repos.create('defco', 'hot', { visibility: 'private' })));
      assert.equal(racing.filter((r) => r?.created).length, 1);
      assert.equal(new Set(racing.map((r) => r?.repository.id)).size, 1);
      assert.equal((await perms.listForRepository(racing[0]!.repository.id)).length, 2);
    });

    it('changes visibility, state and mirror robot', async () => {
      const owner = await user('state-owner');
      const r = await repo('state-owner', 'app');
      assert.equal(await repos.setVisibility(r.id, 'public'), true);
      assert.equal(await repos.setState(r.id, 'READ_ONLY'), true);
      const d = await repos.findDetails('state-owner', 'app');
      assert.deepEqual([d?.visibility, d?.state, d?.namespaceKind, d?.namespaceId], ['public', 'READ_ONLY', 'user', owner.namespaceId]);
      assert.equal(await repos.setState(99_999_999, 'NORMAL'), false);
    });

    it('lists the repositories a reader can read, byte-ordered and paged', async () => {
      const owner = await user('cat-owner');
      const member = await user('cat-member');
      const admin = await user('cat-admin');
      const stranger = await user('cat-stranger');
      const org = (await orgs.create({ name: 'cat', email: null, creatorUserId: admin.id }))!;
      const team = (await teams.create(org.id, { name: 'devs', role: 'member', description: null }))!;
      await teams.addMember(team.id, member.id);
      const bot = (await robots.create(org.id, { shortName: 'bot', description: null, tokenHash: 'x' }))!;
      const pub = await repo('cat', 'pub', 'public');
      const viaTeam = await repo('cat', 'team');
      const viaUser = await repo('cat', 'user');
      const viaBot = await repo('cat', 'bot');
      await repo('cat', 'hidden');
      await repo('cat-owner', 'mine');
      await perms.set(viaTeam.id, { kind: 'team', id: team.id }, 'read');
      await perms.set(viaUser.id, { kind: 'user', id: member.id }, 'write');
      await perms.set(viaBot.id, { kind: 'robot', id: bot.id }, 'read');
      const ours = (names: string[]) => names.filter((n) => n.startsWith('cat/') || n.startsWith('cat-'));
      const all = { limit: 1000 };
      assert.deepEqual(ours(await perms.readableNames({ kind: 'anonymous' }, all)), ['cat/pub']);
      assert.deepEqual(ours(await perms.readableNames({ kind: 'user', userId: stranger.id, namespaceId: stranger.namespaceId }, all)), ['cat/pub']);
      assert.deepEqual(ours(await perms.readableNames({ kind: 'user', userId: member.id, namespaceId: member.namespaceId }, all)), ['cat/pub', 'cat/team', 'cat/user']);
      assert.deepEqual(ours(await perms.readableNames({ kind: 'user', userId: admin.id, namespaceId: admin.namespaceId }, all)), ['cat/bot', 'cat/hidden', 'cat/pub', 'cat/team', 'cat/user']);
      assert.deepEqual(ours(await perms.readableNames({ kind: 'user', userId: owner.id, namespaceId: owner.namespaceId }, all)), ['cat-owner/mine', 'cat/pub']);
      assert.deepEqual(ours(await perms.readableNames({ kind: 'robot', robotId: bot.id }, all)), ['cat/bot', 'cat/pub']);
      assert.deepEqual(ours(await perms.readableNames({ kind: 'everything' }, all)), ['cat-owner/mine', 'cat/bot', 'cat/hidden', 'cat/pub', 'cat/team', 'cat/user']);
      const reader = { kind: 'user', userId: admin.id, namespaceId: admin.namespaceId } as const;
      assert.deepEqual(await perms.readableNames(reader, { last: 'cat/bot', limit: 2 }), ['cat/hidden', 'cat/pub']);
      assert.deepEqual(await perms.readableNames(reader, { last: 'cat/pub', limit: 2 }), ['cat/team', 'cat/user']);
      assert.ok(pub.id > 0);
    });

    it('deletes a namespace with its repositories, robots, teams and their grants elsewhere', async () => {
      const doomed = await user('doomed');
      const keeper = await user('keeper');
      const org = (await orgs.create({ name: 'doomed-org', email: null, creatorUserId: doomed.id }))!;
      const team = (await teams.create(org.id, { name: 'devs', role: 'member', description: null }))!;
      const bot = (await robots.create(org.id, { shortName: 'bot', description: null, tokenHash: 'x' }))!;
      const kept = await repo('keeper', 'app');
      await perms.set(kept.id, { kind: 'user', id: doomed.id }, 'write');
      const doomedRepo = await repo('doomed-org', 'app');
      await perms.set(doomedRepo.id, { kind: 'team', id: team.id }, 'read');
      await perms.set(doomedRepo.id, { kind: 'robot', id: bot.id }, 'read');
      await perms.set(doomedRepo.id, { kind: 'user', id: keeper.id }, 'read');
      // An index and its child, so the cascade has to cross manifest_children.
      const manifests = new ManifestStore(h.db, h.dialect);
      const child = Buffer.from('{"child":1}');
      const index = Buffer.from('{"index":1}');
      assert.ok((await manifests.put({ repositoryId: doomedRepo.id, digest: digestOf(child), mediaType: 'application/vnd.oci.image.manifest.v1+json', content: child, blobDigests: [], childDigests: [], tag: 'c' })).ok);
      assert.ok((await manifests.put({ repositoryId: doomedRepo.id, digest: digestOf(index), mediaType: 'application/vnd.oci.image.index.v1+json', content: index, blobDigests: [], childDigests: [digestOf(child)], tag: 'i' })).ok);
      const tokens = new ApiTokenStore(h.db);
      await tokens.create({ userId: doomed.id, name: 't', tokenHash: 'doomed-token', scopes: ['repo:read'], expiresAt: null });

      assert.equal(await namespaces.delete(org.id), true);
      assert.equal(await repos.findDetails('doomed-org', 'app'), undefined);
      assert.equal(await robots.findById(bot.id), undefined);
      assert.equal(await teams.findById(team.id), undefined);
      const stray = await h.db.selectFrom('repository_permissions').selectAll().where((eb) => eb.or([eb('subject_kind', '=', 'team').and('subject_id', '=', team.id), eb('subject_kind', '=', 'robot').and('subject_id', '=', bot.id)])).execute();
      assert.deepEqual(stray, []);

      assert.equal(await namespaces.delete(doomed.namespaceId), true);
      assert.equal(await namespaces.delete(doomed.namespaceId), false);
      assert.equal(await users.findById(doomed.id), undefined);
      assert.equal(await perms.get(kept.id, { kind: 'user', id: doomed.id }), undefined);
      assert.equal(await tokens.findActiveByHash('doomed-token', Date.now()), undefined);
    });

    it('finds API tokens only while neither revoked nor expired, and throttles last-use writes', async () => {
      const u = await user('tok-user');
      const other = await user('tok-other');
      const tokens = new ApiTokenStore(h.db);
      const t0 = 1_700_000_000_000;
      const t = await tokens.create({ userId: u.id, name: 'ci', tokenHash: 'hash-1', scopes: ['repo:read', 'repo:write'], expiresAt: t0 + 1000 });
      assert.deepEqual([t.name, t.scopes, t.expiresAt, t.lastUsedAt, t.revokedAt], ['ci', ['repo:read', 'repo:write'], t0 + 1000, null, null]);
      assert.equal((await tokens.findActiveByHash('hash-1', t0))?.id, t.id);
      assert.equal(await tokens.findActiveByHash('hash-1', t0 + 1000), undefined);
      assert.equal(await tokens.findActiveByHash('hash-2', t0), undefined);
      await tokens.touch(t.id, t0);
      await tokens.touch(t.id, t0 + 10);
      assert.equal((await tokens.findById(t.id))?.lastUsedAt, t0);
      await tokens.touch(t.id, t0 + 60_000);
      assert.equal((await tokens.findById(t.id))?.lastUsedAt, t0 + 60_000);
      const forever = await tokens.create({ userId: u.id, name: 'forever', tokenHash: 'hash-3', scopes: ['user:read'], expiresAt: null });
      assert.equal((await tokens.findActiveByHash('hash-3', Number.MAX_SAFE_INTEGER))?.id, forever.id);
      assert.equal(await tokens.revoke(forever.id, other.id, t0), false);
      assert.equal(await tokens.revoke(forever.id, u.id, t0), true);
      assert.equal(await tokens.revoke(forever.id, u.id, t0), false);
      assert.equal(await tokens.findActiveByHash('hash-3', t0), undefined);
      assert.deepEqual((await tokens.listForUser(u.id)).map((x) => [x.name, x.revokedAt]), [['forever', t0], ['ci', null]]);
    });

    it('appends audit entries and queries them newest first by namespace, repository, kind, time and cursor', async () => {
      const audit = new AuditLogStore(h.db);
      const base = 1_800_000_000_000;
      const add = (kind: string, namespace: string | null, repository: string | null, at: number) =>
        audit.append({ kind, namespace, repository, actorKind: 'user', actorName: 'x', ip: '10.0.0.1', userAgent: 'ua', metadata: '{"a":1}', createdAt: at });
      const ids = [
        await add('push_repo', 'aud', 'app', base),
        await add('pull_repo', 'aud', 'app', base + 1),
        await add('push_repo', 'aud', 'lib', base + 2),
        await add('org_create_team', 'aud', null, base + 3),
        await add('push_repo', 'aud-other', 'app', base + 4),
      ];
      const kinds = (rows: Array<{ id: number }>) => rows.map((r) => ids.indexOf(r.id));
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', limit: 10 })), [3, 2, 1, 0]);
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', repository: 'app', limit: 10 })), [1, 0]);
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', kinds: ['push_repo'], limit: 10 })), [2, 0]);
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', kinds: [], limit: 10 })), []);
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', since: base + 1, until: base + 3, limit: 10 })), [2, 1]);
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', limit: 2 })), [3, 2]);
      assert.deepEqual(kinds(await audit.query({ namespace: 'aud', beforeId: ids[2], limit: 2 })), [1, 0]);
      const [one] = await audit.query({ namespace: 'aud', repository: 'app', kinds: ['pull_repo'], limit: 1 });
      assert.deepEqual({ ...one, id: 0 }, { id: 0, kind: 'pull_repo', namespace: 'aud', repository: 'app', actorKind: 'user', actorName: 'x', ip: '10.0.0.1', userAgent: 'ua', metadata: '{"a":1}', createdAt: base + 1 });
    });

    it('stores signing keys; the newest signs, any verifies', async () => {
      const keys = new SigningKeyStore(h.db);
      assert.equal(await keys.latest(), undefined);
      await keys.insert({ kid: 'k1', algorithm: 'ES256', privateJwk: '{"k":1}', createdAt: 1 });
      await keys.insert({ kid: 'k1', algorithm: 'ES256', privateJwk: '{"k":"other"}', createdAt: 5 });
      await keys.insert({ kid: 'k2', algorithm: 'ES256', privateJwk: '{"k":2}', createdAt: 2 });
      assert.equal((await keys.latest())?.kid, 'k2');
      assert.equal((await keys.find('k1'))?.privateJwk, '{"k":1}');
      assert.deepEqual((await keys.list()).map((k) => k.kid), ['k2', 'k1']);
    });
  });
}
