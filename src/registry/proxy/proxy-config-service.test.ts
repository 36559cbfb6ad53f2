/**
 * ProxyConfigService on SQLite and PostgreSQL: validation, SSRF refusals, encryption at rest, partial
 * updates, audit entries and change notifications; `validate` against real Distribution registries.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../config/load.js';
import { NamespaceStore } from '../../db/namespace-store.js';
import { ProxyCacheStore } from '../../db/proxy-cache-store.js';
import { RepositoryStore } from '../../db/repository-store.js';
import type { RepositoryName } from '../../oci/reference.js';
import { SsrfGuard } from '../../upstream/ssrf.js';
import { DIALECTS, openTestDatabase, type TestDialect } from '../../../test/helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../../../test/helpers/distribution-process.js';
import { freePort } from '../../../test/helpers/ports.js';
import { AccountError } from '../accounts/account-error.js';
import { createAccounts } from '../../main/compose-accounts.js';
import { createProxyConfigService } from '../../main/compose-proxy-config.js';
import type { Accounts } from '../accounts/accounts.js';
import { RepositoryService } from '../repositories.js';
import {
  ALREADY_EXISTS,
  FAILED_LOGIN,
  FAILED_VALIDATION,
  NOT_ALLOWED,
  ProxyConfigService,
  ProxyCredentialsError,
  type ProxyConfigServiceDeps,
} from './proxy-config-service.js';
import { SecretKeyError, lazySecretBox } from './secret-box.js';

const PUBLIC: Record<string, string> = { 'docker.io': '203.0.113.1', 'registry-1.docker.io': '203.0.113.2', 'quay.io': '203.0.113.3', 'ghcr.io': '203.0.113.4', 'internal.example': '10.1.2.3' };
/** DNS without the network: a few public names, one that resolves to a private address. */
const resolve = async (host: string): Promise<LookupAddress[]> => {
  const address = PUBLIC[host];
  if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return [{ address, family: 4 }];
};

interface World {
  close(): Promise<void>;
  accounts: Accounts;
  repositories: RepositoryService;
  db: Awaited<ReturnType<typeof openTestDatabase>>;
  /** A service over the world's database; `allow` is the SSRF allowlist, `key` the secret key (hex). */
  service(opts?: { allow?: string[]; serverAllow?: string[]; key?: string; onChange?: ProxyConfigServiceDeps['onChange'] }): ProxyConfigService;
}

async function world(dialect: TestDialect): Promise<World> {
  const db = await openTestDatabase(dialect);
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-proxycfg-'));
  const repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect));
  const accounts = createAccounts(db.db, db.dialect, repositories);
  await accounts.accounts.createUser({ name: 'owner', password: 'owner-password' });
  for (const org of ['hub', 'quay', 'other', 'plain']) await accounts.accounts.createOrganization({ name: org, creator: 'owner' });
  return {
    db,
    accounts,
    repositories,
    service: (opts = {}) =>
      new ProxyConfigService({
        store: new ProxyCacheStore(db.db, db.dialect),
        namespaces: new NamespaceStore(db.db, db.dialect),
        audit: accounts.audit,
        secrets: lazySecretBox(loadConfig({ env: {}, overrides: { data_dir: dataDir, ...(opts.key ? { 'proxy_cache.secret_key': opts.key } : {}) } })),
        guard: new SsrfGuard({ allow: opts.allow ?? [], resolve }),
        serverGuard: opts.serverAllow && new SsrfGuard({ allow: opts.serverAllow, resolve }),
        timeouts: { connectMs: 2_000, headersMs: 2_000, bodyIdleMs: 2_000 },
        onChange: opts.onChange,
      }),
    close: async () => {
      await accounts.audit.flush();
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

const who = { actor: { kind: 'system' as const, name: 'test' } };

/** Rejects with a 400 AccountError whose message matches. */
async function invalid(p: Promise<unknown>, message: RegExp | string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AccountError, String(err));
    assert.equal(err.status, 400, err.message);
    if (typeof message === 'string') assert.ok(err.message.startsWith(message), err.message);
    else assert.match(err.message, message);
    return true;
  });
}

async function notFound(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof AccountError && err.status === 404 && message.test(err.message));
}

for (const dialect of DIALECTS) {
  describe(`ProxyConfigService (${dialect})`, () => {
    let w: World;
    let svc: ProxyConfigService;
    const changes: Array<[number, string]> = [];
    before(async () => {
      w = await world(dialect);
      svc = w.service({ allow: ['127.0.0.1'], onChange: (id, org) => changes.push([id, org]) });
    });
    after(() => w.close());

    const kinds = async (namespace: string) => (await w.accounts.audit.query({ namespace })).entries.map((e) => [e.kind, e.metadata]);

    it('creates with defaults, encrypts the credentials and never shows them', async () => {
      assert.equal(await svc.get('hub'), undefined);
      const created = await svc.create('hub', { upstreamRegistry: 'docker.io', username: 'hubuser', password: 'hub-secret-pw' }, who);
      assert.deepEqual({ ...created, namespaceId: 0, createdAt: 0, updatedAt: 0 }, {
        namespaceId: 0,
        organization: 'hub',
        upstreamRegistry: 'docker.io',
        insecure: false,
        expirationS: 86_400,
        anonymousPull: false,
        revalidateIntervalS: 0,
        prefetchLayers: false,
        answersFor: ['docker.io'],
        hasCredentials: true,
        createdAt: 0,
        updatedAt: 0,
      });
      assert.deepEqual(changes.at(-1), [created.namespaceId, 'hub']);
      assert.deepEqual(await svc.get('hub'), created);
      const row = await w.db.db.selectFrom('proxy_cache_configs').selectAll().executeTakeFirstOrThrow();
      assert.match(row.username_enc!, /^v1:/);
      assert.ok(!JSON.stringify(row).includes('hub-secret-pw') && !JSON.stringify(row).includes('hubuser'));
      const full = await svc.findByOrganization('hub');
      assert.deepEqual(full?.credentials, { username: 'hubuser', password: 'hub-secret-pw' });
      assert.deepEqual((await svc.findByNamespaceId(created.namespaceId))?.credentials, full?.credentials);
      assert.deepEqual(await kinds('hub'), [['create_proxy_cache_config', { upstream_registry: 'docker.io' }]]);
      await invalid(svc.create('hub', { upstreamRegistry: 'quay.io' }, who), ALREADY_EXISTS);
    });

    it('stores upstreams in canonical form; answers_for defaults to the upstream host unless another organization has it', async () => {
      const quay = await svc.create('quay', { upstreamRegistry: 'https://Quay.IO/myorg', expirationS: 0, anonymousPull: true, revalidateIntervalS: 10, prefetchLayers: true }, who);
      assert.deepEqual([quay.upstreamRegistry, quay.insecure, quay.answersFor, quay.expirationS, quay.hasCredentials], ['quay.io/myorg', false, ['quay.io'], 0, false]);
      const plain = await svc.create('plain', { upstreamRegistry: 'http://127.0.0.1:5999', answersFor: ['Docker.IO.', 'ghcr.io', 'ghcr.io', '[::1]:5000', '10.0.0.5:5000'] }, who).catch((e: Error) => e);
      assert.ok(plain instanceof AccountError && /organization hub already answers for docker\.io/.test(plain.message), String(plain));
      const created = await svc.create('plain', { upstreamRegistry: 'http://127.0.0.1:5999', answersFor: ['GHCR.io', 'ghcr.io', '[::1]:5000', '10.0.0.5:5000'] }, who);
      assert.deepEqual([created.upstreamRegistry, created.insecure, created.answersFor], ['127.0.0.1:5999', true, ['ghcr.io', '[::1]:5000', '10.0.0.5:5000']]);
      await svc.delete('plain', who);
      const hubAgain = await svc.create('plain', { upstreamRegistry: 'registry-1.docker.io' }, who);
      assert.deepEqual(hubAgain.answersFor, [], 'docker.io is answered for by hub already');
      await svc.delete('plain', who);
      assert.deepEqual((await svc.list()).map((c) => c.organization), ['hub', 'quay']);
    });

    it('refuses bad input with a clear 400', async () => {
      const cases: Array<[object, RegExp]> = [
        [{ upstreamRegistry: '' }, /upstream_registry is required/],
        [{}, /upstream_registry is required/],
        [{ upstreamRegistry: 'ftp://quay.io' }, /scheme "ftp" is not allowed/],
        [{ upstreamRegistry: 'user:pw@quay.io' }, /credentials must not be embedded/],
        [{ upstreamRegistry: 'quay.io/Bad Name' }, /whitespace/],
        [{ upstreamRegistry: 'nosuch.invalid' }, /^Failed to validate Proxy cache configuration: cannot resolve upstream host "nosuch.invalid"/],
        [{ upstreamRegistry: 'quay.io', expirationS: -1 }, /expiration_s must be a whole number of seconds from 0 \(never expires\) to 315360000/],
        [{ upstreamRegistry: 'quay.io', expirationS: 1.5 }, /expiration_s/],
        [{ upstreamRegistry: 'quay.io', expirationS: 315_360_001 }, /expiration_s/],
        [{ upstreamRegistry: 'quay.io', expirationS: '60' }, /expiration_s/],
        [{ upstreamRegistry: 'quay.io', revalidateIntervalS: 3601 }, /revalidate_interval_s must be a whole number of seconds from 0 .* to 3600/],
        [{ upstreamRegistry: 'quay.io', insecure: 'yes' }, /insecure must be true or false/],
        [{ upstreamRegistry: 'quay.io', answersFor: ['quay.io/x'] }, /answers_for: "quay.io\/x" is not a host\[:port\]/],
        [{ upstreamRegistry: 'quay.io', answersFor: ['quay.io:99999'] }, /answers_for/],
        [{ upstreamRegistry: 'quay.io', answersFor: ['-bad.io'] }, /answers_for/],
        [{ upstreamRegistry: 'quay.io', answersFor: ['[zz::1]'] }, /answers_for/],
        [{ upstreamRegistry: 'quay.io', answersFor: 'quay.io' }, /answers_for must be a list/],
        [{ upstreamRegistry: 'quay.io', username: 'only-user' }, /together, or neither/],
        [{ upstreamRegistry: 'quay.io', password: 'only-password' }, /together, or neither/],
        [{ upstreamRegistry: 'quay.io', username: 'a:b', password: 'pw' }, /must not contain ":"/],
        [{ upstreamRegistry: 'quay.io', username: '', password: 'pw' }, /must not be empty/],
      ];
      for (const [input, message] of cases) await invalid(svc.create('other', input as never, who), message);
      assert.equal(await svc.get('other'), undefined);
      await notFound(svc.create('owner', { upstreamRegistry: 'quay.io' }, who), /organization owner not found/);
      await notFound(svc.create('nosuch', { upstreamRegistry: 'quay.io' }, who), /organization nosuch not found/);
      await notFound(svc.get('owner'), /not found/);
      await notFound(svc.create('Bad Name', { upstreamRegistry: 'quay.io' }, who), /not found/);
    });

    it('refuses SSRF targets: private and loopback unless allowlisted, link-local and metadata always', async () => {
      const strict = w.service();
      for (const upstream of ['10.0.0.1', '127.0.0.1:5000', '127.0.0.2', '192.168.1.1', 'internal.example', '169.254.169.254', 'metadata.google.internal', 'kubernetes.default.svc', '[::1]:5000', '[fe80::1]', '[::ffff:169.254.169.254]', '0.0.0.0']) {
        await invalid(strict.create('other', { upstreamRegistry: upstream }, who), NOT_ALLOWED);
      }
      for (const upstream of ['169.254.169.254', 'metadata.google.internal', 'kubernetes.default.svc', '10.0.0.1']) {
        await invalid(svc.create('other', { upstreamRegistry: upstream }, who), NOT_ALLOWED);
        await invalid(svc.validate({ upstreamRegistry: upstream }), NOT_ALLOWED);
      }
      const loose = w.service({ allow: ['10.0.0.0/8', 'internal.example'] });
      const ok = await loose.create('other', { upstreamRegistry: 'internal.example:5000', insecure: true }, who);
      assert.equal(ok.upstreamRegistry, 'internal.example:5000');
      await loose.delete('other', who);
      await invalid(loose.create('other', { upstreamRegistry: '169.254.169.254' }, who), NOT_ALLOWED);
    });

    it('a private upstream refused names the setting that allows it', async () => {
      await invalid(w.service().create('other', { upstreamRegistry: '10.0.0.1' }, who), /add "10\.0\.0\.1" \(or a CIDR covering it\) to proxy_cache\.allow_private_upstreams/);
      await invalid(w.service().validate({ upstreamRegistry: 'internal.example' }), /address 10\.1\.2\.3 of "internal\.example" .*add "internal\.example" \(or 10\.1\.2\.3, or a CIDR covering it\) to proxy_cache\.allow_private_upstreams/);
    });

    it("with the running server's guard (the CLI's case), an upstream must pass both, and a refusal says which side refuses", async () => {
      const serverRefuses = w.service({ allow: ['internal.example'], serverAllow: [] });
      await invalid(serverRefuses.create('other', { upstreamRegistry: 'internal.example:5000', insecure: true }, who), /^The provided registry URL is not allowed: the running server would refuse it: .*proxy_cache\.allow_private_upstreams/);
      await invalid(serverRefuses.validate({ upstreamRegistry: 'internal.example:5000', insecure: true }), /the running server would refuse it/);
      assert.equal(await svc.get('other'), undefined, 'nothing was stored');
      const serverAllows = w.service({ allow: [], serverAllow: ['10.0.0.0/8'] });
      await invalid(serverAllows.create('other', { upstreamRegistry: 'internal.example:5000', insecure: true }, who), /proxy_cache\.allow_private_upstreams \(the running server allows it: this command does not read the same/);
      const both = w.service({ allow: ['internal.example'], serverAllow: ['10.0.0.0/8'] });
      const created = await both.create('other', { upstreamRegistry: 'internal.example:5000', insecure: true }, who);
      assert.equal(created.upstreamRegistry, 'internal.example:5000');
      await both.delete('other', who);
    });

    it('updates the fields given, keeps the rest, and guards the credentials', async () => {
      const before = (await svc.get('hub'))!;
      const changed = await svc.update('hub', { expirationS: 3600, insecure: false, revalidateIntervalS: 5, anonymousPull: true }, who);
      assert.deepEqual([changed.expirationS, changed.revalidateIntervalS, changed.anonymousPull, changed.upstreamRegistry, changed.hasCredentials, changed.answersFor], [3600, 5, true, 'docker.io', true, ['docker.io']]);
      assert.ok(changed.updatedAt >= before.updatedAt);
      assert.deepEqual(changes.at(-1), [before.namespaceId, 'hub']);
      const entry = (await w.accounts.audit.query({ namespace: 'hub', kinds: ['update_proxy_cache_config'] })).entries[0]!;
      assert.deepEqual(entry.metadata, { upstream_registry: 'docker.io', changed: ['expiration_s', 'insecure', 'revalidate_interval_s', 'anonymous_pull'] });

      await svc.update('hub', { username: 'new-user', password: 'new-password' }, who);
      assert.deepEqual((await svc.findByOrganization('hub'))?.credentials, { username: 'new-user', password: 'new-password' });
      await invalid(svc.update('hub', { username: 'x' }, who), /together/);
      await invalid(svc.update('hub', { username: null }, who), /together/);
      await invalid(svc.update('hub', { expirationS: -5 }, who), /expiration_s/);

      // Credentials do not follow the upstream to another host, or onto plain HTTP, unless given again.
      await invalid(svc.update('hub', { upstreamRegistry: 'quay.io' }, who), /needs them given again/);
      await invalid(svc.update('hub', { insecure: true }, who), /needs them given again/);
      await invalid(svc.update('hub', { upstreamRegistry: '10.9.9.9' }, who), NOT_ALLOWED);
      const ns = await svc.update('hub', { upstreamRegistry: 'docker.io/library' }, who);
      assert.deepEqual([ns.upstreamRegistry, ns.hasCredentials, ns.answersFor], ['docker.io/library', true, ['docker.io']], 'same host: credentials stay');

      const moved = await svc.update('hub', { upstreamRegistry: 'ghcr.io', username: null, password: null }, who);
      assert.deepEqual([moved.upstreamRegistry, moved.hasCredentials, moved.answersFor], ['ghcr.io', false, ['ghcr.io']], 'the default answers_for follows the upstream');
      assert.equal((await svc.findByOrganization('hub'))?.credentials, undefined);
      const hosts = await svc.update('hub', { answersFor: ['docker.io', 'ghcr.io'], upstreamRegistry: 'docker.io' }, who);
      assert.deepEqual(hosts.answersFor, ['docker.io', 'ghcr.io']);
      const back = await svc.update('hub', { upstreamRegistry: 'https://registry-1.docker.io', username: 'hubuser', password: 'hub-secret-pw' }, who);
      assert.deepEqual([back.upstreamRegistry, back.answersFor, back.hasCredentials], ['registry-1.docker.io', ['docker.io', 'ghcr.io'], true], 'answers_for set by hand stays');

      await notFound(svc.update('other', { expirationS: 1 }, who), /organization other has no proxy cache configuration/);
      await notFound(svc.update('owner', { expirationS: 1 }, who), /organization owner not found/);
    });

    it('deletes only the configuration; cached repositories stay', async () => {
      await svc.create('other', { upstreamRegistry: 'ghcr.io', answersFor: [] }, who);
      await w.repositories.create('other/library/nginx' as RepositoryName, { visibility: 'private' });
      const id = (await svc.get('other'))!.namespaceId;
      await svc.delete('other', who);
      assert.deepEqual(changes.at(-1), [id, 'other']);
      assert.equal(await svc.get('other'), undefined);
      assert.ok(await w.repositories.details('other/library/nginx' as RepositoryName));
      await notFound(svc.delete('other', who), /has no proxy cache configuration/);
      assert.deepEqual((await kinds('other')).slice(0, 2).map((k) => k[0]), ['delete_proxy_cache_config', 'create_proxy_cache_config']);
      assert.deepEqual((await kinds('other'))[0]![1], { upstream_registry: 'ghcr.io' });
    });

    it('credentials sealed with another key: a clear error naming the organization, the rest keeps working', async () => {
      const other = w.service({ key: randomBytes(32).toString('hex'), allow: ['127.0.0.1'] });
      await assert.rejects(other.findByOrganization('hub'), (err: unknown) => err instanceof ProxyCredentialsError && err.organization === 'hub' && /hub/.test(err.message) && err.status === 400);
      assert.equal((await other.get('hub'))?.hasCredentials, true);
      assert.ok((await other.list()).length >= 2);
      assert.equal((await other.findByOrganization('quay'))?.credentials, undefined, 'no credentials, nothing to decrypt');
      await assert.rejects(other.validateSaved('hub'), ProxyCredentialsError);
      // Setting them again with the new key repairs it.
      await other.update('hub', { username: 'u', password: 'p' }, who);
      assert.deepEqual((await other.findByOrganization('hub'))?.credentials, { username: 'u', password: 'p' });
    });

    it('listeners hear of changes; a failing listener does not fail the change', async () => {
      const heard: string[] = [];
      const off = svc.subscribe((_, org) => heard.push(org));
      svc.subscribe(() => {
        throw new Error('boom');
      });
      await svc.update('quay', { expirationS: 60 }, who);
      off();
      await svc.update('quay', { expirationS: 61 }, who);
      assert.deepEqual(heard, ['quay']);
    });
  });
}

describe('ProxyConfigService.validate against real registries', () => {
  let w: World;
  let svc: ProxyConfigService;
  let open: DistributionProcess;
  let locked: DistributionProcess;
  before(async () => {
    w = await world('sqlite');
    svc = w.service({ allow: ['127.0.0.1'] });
    [open, locked] = await Promise.all([startDistribution(), startDistribution({ auth: { htpasswd: { realm: 'wharf-test', users: { puller: 'puller-password' } } } })]);
  });
  after(async () => {
    await Promise.all([open?.stop(), locked?.stop()]);
    await w?.close();
  });

  it('"Valid" for an open registry, over http:// or with insecure', async () => {
    assert.equal(await svc.validate({ upstreamRegistry: open.host, insecure: true }), 'Valid');
    assert.equal(await svc.validate({ upstreamRegistry: `http://${open.host}/library` }), 'Valid');
  });

  it('"Anonymous" without credentials where the registry wants some; "Valid" with the right ones; a failed login otherwise', async () => {
    assert.equal(await svc.validate({ upstreamRegistry: locked.host, insecure: true }), 'Anonymous');
    assert.equal(await svc.validate({ upstreamRegistry: locked.host, insecure: true, username: 'puller', password: 'puller-password' }), 'Valid');
    await invalid(svc.validate({ upstreamRegistry: locked.host, insecure: true, username: 'puller', password: 'wrong-password' }), `${FAILED_LOGIN} (`);
  });

  it('validates the stored configuration, with changes applied', async () => {
    await svc.create('plain', { upstreamRegistry: locked.host, insecure: true, username: 'puller', password: 'puller-password' }, who);
    assert.equal(await svc.validateSaved('plain'), 'Valid');
    await invalid(svc.validateSaved('plain', { username: 'puller', password: 'nope-nope' }), FAILED_LOGIN);
    assert.equal(await svc.validateSaved('plain', { username: null, password: null }), 'Anonymous');
    assert.equal((await svc.findByOrganization('plain'))?.credentials?.password, 'puller-password', 'validation stores nothing');
    await notFound(svc.validateSaved('quay'), /no proxy cache configuration/);
  });

  it('createProxyConfigService refuses a malformed secret_key or allowlist at once', () => {
    const config = (overrides: Record<string, unknown>) => loadConfig({ env: {}, overrides: { data_dir: '/nonexistent', ...overrides } });
    assert.throws(() => createProxyConfigService(w.db.db, w.db.dialect, config({ 'proxy_cache.secret_key': 'too-short' })), SecretKeyError);
    assert.throws(() => createProxyConfigService(w.db.db, w.db.dialect, config({ 'proxy_cache.allow_private_upstreams': ['not a host!'] })), ConfigError);
    assert.ok(createProxyConfigService(w.db.db, w.db.dialect, config({ 'proxy_cache.secret_key': randomBytes(32).toString('hex') })) instanceof ProxyConfigService);
  });

  it('an unreachable upstream, a non-registry and a refused address are 400 with the reason', async () => {
    const port = await freePort();
    await invalid(svc.validate({ upstreamRegistry: `127.0.0.1:${port}`, insecure: true }), new RegExp(`^${FAILED_VALIDATION}: the remote registry cannot be reached \\(.*(refused|ECONNREFUSED)`, 'i'));
    await invalid(w.service().validate({ upstreamRegistry: open.host, insecure: true }), new RegExp(`^${NOT_ALLOWED}: .*loopback or private`));
  });
});
