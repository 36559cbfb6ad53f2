import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startFaultServer } from '../../test/helpers/fault-server.js';
import { UpstreamBlockedError } from './errors.js';
import { SsrfGuard, UpstreamSpecError, classifyAddress, parseUpstreamSpec, upstreamRepository, validateUpstream, type Resolver } from './ssrf.js';
import { UpstreamClient } from './upstream-client.js';

const fakeDns =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const addrs = table[host];
    if (!addrs) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('parseUpstreamSpec', () => {
  it('maps docker.io to registry-1.docker.io over https', () => {
    const s = parseUpstreamSpec('docker.io');
    assert.deepEqual(s, { registry: 'docker.io', scheme: 'https', host: 'registry-1.docker.io', port: 443, namespacePrefix: undefined, dockerHub: true, baseUrl: 'https://registry-1.docker.io' });
  });

  it('parses host:port, a namespace, insecure and an explicit scheme', () => {
    assert.deepEqual(parseUpstreamSpec('quay.io/prometheus'), { registry: 'quay.io', scheme: 'https', host: 'quay.io', port: 443, namespacePrefix: 'prometheus', dockerHub: false, baseUrl: 'https://quay.io' });
    const s = parseUpstreamSpec('10.0.0.5:5000/team/sub', { insecure: true });
    assert.equal(s.baseUrl, 'http://10.0.0.5:5000');
    assert.equal(s.port, 5000);
    assert.equal(s.namespacePrefix, 'team/sub');
    assert.equal(parseUpstreamSpec('http://registry.example:8080').scheme, 'http');
    assert.equal(parseUpstreamSpec('https://registry.example/').baseUrl, 'https://registry.example');
    const v6 = parseUpstreamSpec('[2001:db8::1]:5000');
    assert.equal(v6.host, '2001:db8::1');
    assert.equal(v6.baseUrl, 'https://[2001:db8::1]:5000');
  });

  it('refuses credentials, other schemes and malformed specs', () => {
    for (const bad of [
      'https://user:pass@registry.example',
      'user@registry.example',
      'user:pass@registry.example:5000/ns',
      'ftp://registry.example',
      'file:///etc/passwd',
      'gopher://registry.example',
      '',
      'registry.example/../x',
      'registry.example/NS',
      'registry.example?x=1',
      'registry.example#frag',
      'registry example',
      'registry.example/a%2fb',
    ]) {
      assert.throws(() => parseUpstreamSpec(bad), UpstreamSpecError, bad);
    }
  });

  it('maps client paths to upstream paths', () => {
    assert.equal(upstreamRepository(parseUpstreamSpec('docker.io'), 'nginx'), 'library/nginx');
    assert.equal(upstreamRepository(parseUpstreamSpec('docker.io'), 'bitnami/redis'), 'bitnami/redis');
    assert.equal(upstreamRepository(parseUpstreamSpec('docker.io/library'), 'nginx'), 'library/nginx');
    assert.equal(upstreamRepository(parseUpstreamSpec('quay.io'), 'nginx'), 'nginx');
    assert.equal(upstreamRepository(parseUpstreamSpec('quay.io/ns'), 'a/b'), 'ns/a/b');
    assert.throws(() => upstreamRepository(parseUpstreamSpec('quay.io'), 'Bad/Name'), UpstreamSpecError);
  });
});

describe('address classes', () => {
  it('classifies IPv4, IPv6, mapped and NAT64 addresses', () => {
    const cases: Array<[string, string]> = [
      ['93.184.216.34', 'public'],
      ['2606:4700::6810:85e5', 'public'],
      ['169.254.169.254', 'refused'],
      ['169.254.1.1', 'refused'],
      ['fe80::1', 'refused'],
      ['fd00:ec2::254', 'refused'],
      ['100.100.100.200', 'refused'],
      ['0.0.0.0', 'refused'],
      ['::', 'refused'],
      ['224.0.0.1', 'refused'],
      ['ff02::1', 'refused'],
      ['::ffff:169.254.169.254', 'refused'],
      ['::ffff:a9fe:a9fe', 'refused'],
      ['64:ff9b::a9fe:a9fe', 'refused'],
      ['127.0.0.1', 'private'],
      ['::1', 'private'],
      ['::ffff:127.0.0.1', 'private'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['172.32.0.1', 'public'],
      ['192.168.1.1', 'private'],
      ['100.64.0.1', 'private'],
      ['fd12:3456::1', 'private'],
      ['fc00::1', 'private'],
    ];
    for (const [addr, want] of cases) assert.equal(classifyAddress(addr), want, addr);
  });
});

describe('SsrfGuard', () => {
  it('refuses link-local and metadata addresses and hosts even when allowlisted', async () => {
    const guard = new SsrfGuard({ allow: ['0.0.0.0/0', '::/0', 'metadata.google.internal', '169.254.169.254'], resolve: fakeDns({ 'evil.test': ['169.254.169.254'] }) });
    for (const host of ['169.254.169.254', 'fe80::1', 'fd00:ec2::254', 'metadata.google.internal', 'evil.test', 'kubernetes.default.svc']) {
      await assert.rejects(guard.checkHost(host), UpstreamBlockedError, host);
    }
  });

  it('refuses loopback, private and unique-local addresses unless allowlisted', async () => {
    const strict = new SsrfGuard({ resolve: fakeDns({}) });
    for (const host of ['127.0.0.1', '10.0.0.5', '172.16.3.4', '192.168.0.1', '::1', 'fd12::1', '[::1]']) {
      await assert.rejects(strict.checkHost(host), UpstreamBlockedError, host);
    }
    const byCidr = new SsrfGuard({ allow: ['10.0.0.0/8', '::1/128', '127.0.0.1'], resolve: fakeDns({}) });
    for (const host of ['10.0.0.5', '::1', '127.0.0.1']) await byCidr.checkHost(host);
    await assert.rejects(byCidr.checkHost('192.168.0.1'), UpstreamBlockedError);
    await assert.rejects(byCidr.checkHost('127.0.0.2'), UpstreamBlockedError);
    const v6net = new SsrfGuard({ allow: ['fd12::/16'], resolve: fakeDns({}) });
    await v6net.checkHost('fd12:3456::1');
    await assert.rejects(v6net.checkHost('fd13::1'), UpstreamBlockedError);
  });

  it('checks every address a DNS name resolves to (localhost is loopback)', async () => {
    const strict = new SsrfGuard();
    await assert.rejects(validateUpstream('localhost:5000', { insecure: true, guard: strict }), UpstreamBlockedError);
    const mixed = new SsrfGuard({ resolve: fakeDns({ 'mixed.test': ['93.184.216.34', '10.0.0.1'], 'public.test': ['93.184.216.34', '2606:4700::1'] }) });
    await assert.rejects(mixed.checkHost('mixed.test'), UpstreamBlockedError);
    assert.equal((await mixed.checkHost('public.test')).length, 2);
    const byName = new SsrfGuard({ allow: ['localhost'] });
    const spec = await validateUpstream('localhost:5000', { insecure: true, guard: byName });
    assert.equal(spec.baseUrl, 'http://localhost:5000');
    const byNet = new SsrfGuard({ allow: ['127.0.0.0/8', '::1/128'] });
    await validateUpstream('localhost:5000', { insecure: true, guard: byNet });
  });

  it('a refusal of a private address names the setting that allows it; an always-refused one does not', async () => {
    const strict = new SsrfGuard({ resolve: fakeDns({ 'registry.lan': ['192.168.1.20'] }) });
    await assert.rejects(strict.checkHost('registry.lan'), (err: Error) => {
      assert.match(err.message, /upstream address 192\.168\.1\.20 of "registry\.lan" is loopback or private; to allow it, add "registry\.lan" \(or 192\.168\.1\.20, or a CIDR covering it\) to proxy_cache\.allow_private_upstreams/);
      return true;
    });
    await assert.rejects(strict.checkHost('127.0.0.1'), /add "127\.0\.0\.1" \(or a CIDR covering it\) to proxy_cache\.allow_private_upstreams/);
    await assert.rejects(strict.checkHost('169.254.169.254'), (err: Error) => !/allow_private_upstreams/.test(err.message));
  });

  it('refuses invalid allowlist entries', () => {
    assert.throws(() => new SsrfGuard({ allow: ['http://x'] }), UpstreamSpecError);
  });

  it('checks again at connect time, so DNS rebinding cannot reach a refused address', async () => {
    const server = await startFaultServer((_req, res) => void res.writeHead(200).end());
    let answers = 0;
    // The first answer (validation) is public; every later one (the connection) points at loopback.
    const guard = new SsrfGuard({ resolve: async () => [{ address: answers++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }] });
    const spec = await validateUpstream(`rebind.test:${server.port}`, { insecure: true, guard });
    const client = new UpstreamClient({ spec, guard });
    try {
      await assert.rejects(client.getManifest('library/nginx', 'latest'), UpstreamBlockedError);
      assert.equal(server.requests.length, 0);
      assert.equal(client.breaker.state, 'closed');
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('refuses an IP-literal connection (no DNS lookup) at connect time', async () => {
    const server = await startFaultServer((_req, res) => void res.writeHead(200).end());
    const guard = new SsrfGuard();
    const client = new UpstreamClient({ spec: parseUpstreamSpec(server.host, { insecure: true }), guard });
    try {
      await assert.rejects(client.listTags('a/b'), UpstreamBlockedError);
      assert.equal(server.requests.length, 0);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
