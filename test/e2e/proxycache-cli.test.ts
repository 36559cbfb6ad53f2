/**
 * `wharf proxycache set|show|validate|list|delete` of the real CLI against a temporary SQLite data
 * directory, an upstream Distribution registry with htpasswd auth, and then a real `wharf serve` on the
 * same data directory that reads (and decrypts) what the CLI stored.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { runCommand } from '../helpers/e2e-utils.js';
import { startWharf } from '../helpers/wharf-process.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

describe('wharf proxycache commands', () => {
  let dir: string;
  let upstream: DistributionProcess;
  const env = (extra: Record<string, string> = {}) => {
    const e: NodeJS.ProcessEnv = { ...process.env };
    delete e.WHARF_DB_URL;
    delete e.WHARF_PROXY_CACHE_SECRET_KEY;
    return { ...e, WHARF_DATA_DIR: dir, WHARF_LOG_LEVEL: 'warn', WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1', ...extra };
  };
  const wharf = (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) =>
    runCommand(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), ...args], { env: env(opts.env), input: opts.input ?? '', timeoutMs: 60_000 });
  const ok = async (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) => {
    const res = await wharf(args, opts);
    assert.equal(res.code, 0, `wharf ${args.join(' ')}: ${res.stderr}`);
    return res;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-proxycli-'));
    upstream = await startDistribution({ auth: { htpasswd: { realm: 'upstream', users: { puller: 'puller-password' } } } });
    await ok(['user', 'create', 'alice', '--password', 'alice-password']);
    await ok(['org', 'create', 'acme', '--owner', 'alice']);
    await ok(['org', 'create', 'other', '--owner', 'alice']);
  });
  after(async () => {
    await upstream?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('set creates with credentials from stdin (encrypted with a generated 0600 key); show never prints them', async () => {
    const set = await ok(['proxycache', 'set', 'acme', '--upstream', upstream.host, '--insecure', '--username', 'puller', '--password-stdin', '--expiration', '7d', '--answers-for', 'docker.io'], { input: 'puller-password\n' });
    assert.match(set.stderr, /acme is now a proxy cache: http:\/\/127\.0\.0\.1:\d+; tags expire after 604800 s; with credentials; answers for docker\.io/);
    assert.equal((await stat(join(dir, 'proxy-secret.key'))).mode & 0o777, 0o600);
    const shown = await ok(['proxycache', 'show', 'acme']);
    const doc = JSON.parse(shown.stdout) as Record<string, unknown>;
    assert.deepEqual({ ...doc, created: 0, updated: 0 }, {
      organization: 'acme',
      upstream_registry: upstream.host,
      expiration_s: 604_800,
      insecure: true,
      anonymous_pull: false,
      revalidate_interval_s: 0,
      prefetch_layers: false,
      answers_for: ['docker.io'],
      has_credentials: true,
      created: 0,
      updated: 0,
    });
    assert.ok(!shown.stdout.includes('puller-password'));
  });

  it('validate checks the stored configuration, changed settings, or an unsaved upstream', async () => {
    assert.equal((await ok(['proxycache', 'validate', 'acme'])).stdout, 'Valid\n');
    assert.equal((await ok(['proxycache', 'validate', '--upstream', `http://${upstream.host}`])).stdout, 'Anonymous\n');
    assert.equal((await ok(['proxycache', 'validate', 'acme', '--no-credentials'])).stdout, 'Anonymous\n');
    const wrong = await wharf(['proxycache', 'validate', 'acme', '--username', 'puller', '--password', 'wrong-password']);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /^wharf: Failed login to remote registry\. Please verify entered details and try again\. \(/);
  });

  it('set on an existing configuration changes only the settings given', async () => {
    const res = await ok(['proxycache', 'set', 'acme', '--expiration', '3600', '--anonymous-pull', '--revalidate-interval', '10', '--prefetch-layers']);
    assert.match(res.stderr, /updated the proxy cache of acme: .*tags expire after 3600 s; with credentials; anonymous pulls allowed; upstream answers reused for 10 s; layers prefetched; answers for docker\.io/);
    assert.equal((await ok(['proxycache', 'validate', 'acme'])).stdout, 'Valid\n', 'the credentials stay');
    const list = await ok(['proxycache', 'list']);
    const lines = list.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ORGANIZATION\s+UPSTREAM\s+SCHEME\s+EXPIRATION_S\s+ANONYMOUS_PULL\s+CREDENTIALS\s+ANSWERS_FOR$/);
    assert.deepEqual(lines[1]!.split(/\s+/), ['acme', upstream.host, 'http', '3600', 'yes', 'yes', 'docker.io']);
  });

  it('refuses bad input (2), missing organizations and configurations (1), and says when the feature is off', async () => {
    const cases: Array<[string[], number, RegExp, Record<string, string>?]> = [
      [['proxycache', 'set', 'other', '--upstream', '169.254.169.254'], 2, /The provided registry URL is not allowed/],
      [['proxycache', 'set', 'other', '--upstream', '10.0.0.1'], 2, /not allowed: .*loopback or private/],
      [['proxycache', 'set', 'other', '--upstream', 'metadata.google.internal'], 2, /not allowed/],
      [['proxycache', 'set', 'other'], 2, /give --upstream/],
      [['proxycache', 'set', 'other', '--upstream', upstream.host, '--expiration', 'soon'], 2, /--expiration takes whole seconds/],
      [['proxycache', 'set', 'other', '--upstream', upstream.host, '--revalidate-interval', '2h'], 2, /revalidate_interval_s must be/],
      [['proxycache', 'set', 'other', '--upstream', upstream.host, '--password', 'x'], 2, /--username with --password/],
      [['proxycache', 'set', 'other', '--upstream', upstream.host, '--insecure', '--no-insecure'], 2, /not both/],
      [['proxycache', 'set', 'other', '--upstream', upstream.host, '--answers-for', 'docker.io'], 2, /organization acme already answers for docker\.io/],
      [['proxycache', 'set', 'alice', '--upstream', upstream.host], 1, /organization alice not found/],
      [['proxycache', 'show', 'other'], 1, /other has no proxy cache configuration/],
      [['proxycache', 'show'], 2, /exactly one organization name/],
      [['proxycache', 'show', 'acme', '--upstream', 'x'], 2, /does not take --upstream/],
      [['proxycache', 'list', 'acme'], 2, /takes no arguments/],
      [['proxycache', 'validate'], 2, /give an organization, or --upstream/],
      [['user', 'create', 'bob', '--upstream', 'x'], 2, /does not take --upstream/],
      [['proxycache', 'list'], 1, /the proxy cache is turned off \(proxy_cache\.enabled is false\)/, { WHARF_PROXY_CACHE_ENABLED: 'false' }],
      [['proxycache', 'set', 'acme', '--expiration', '1'], 2, /secret_key must be 32 bytes/, { WHARF_PROXY_CACHE_SECRET_KEY: 'short' }],
      [['proxycache', 'list'], 2, /proxy_cache\.allow_private_upstreams: invalid SSRF allowlist entry/, { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: 'bad entry!' }],
    ];
    for (const [args, code, message, extra] of cases) {
      const res = await wharf(args, { env: extra });
      assert.equal(res.code, code, `wharf ${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message, args.join(' '));
    }
  });

  it('wharf serve reads what the CLI stored and decrypts its credentials with the same key file', async () => {
    const server = await startWharf({ dataDir: dir, organizations: [], env: { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1' } });
    try {
      const headers = { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}`, 'content-type': 'application/json' };
      const shown = await fetch(`${server.url}/api/v1/organization/acme/proxycache`, { headers });
      assert.equal(shown.status, 200);
      assert.equal(((await shown.json()) as { upstream_registry: string }).upstream_registry, upstream.host);
      const valid = await fetch(`${server.url}/api/v1/organization/acme/validateproxycache`, { method: 'POST', headers, body: '{}' });
      assert.equal(valid.status, 202, await valid.clone().text());
      assert.equal(await valid.json(), 'Valid');
    } finally {
      await server.stop();
    }
  });

  it('delete removes the configuration only', async () => {
    assert.match((await ok(['proxycache', 'delete', 'acme'])).stderr, /deleted the proxy cache configuration of acme/);
    const again = await wharf(['proxycache', 'delete', 'acme']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /acme has no proxy cache configuration/);
    assert.equal((await ok(['proxycache', 'list'])).stdout.trim().split('\n').length, 1);
  });
});
