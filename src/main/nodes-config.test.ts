import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { ProxyCacheSummary } from '../registry/proxy/proxy-config.js';
import { formatNodesConfig, NODE_FORMATS, renderNodesConfig, writeNodesConfig } from './nodes-config.js';

const cache = (organization: string, upstreamRegistry: string, answersFor: string[], extra: Partial<ProxyCacheSummary> = {}): ProxyCacheSummary => ({
  namespaceId: 1,
  organization,
  upstreamRegistry,
  answersFor,
  insecure: false,
  expirationS: 86_400,
  anonymousPull: true,
  revalidateIntervalS: 0,
  prefetchLayers: false,
  hasCredentials: false,
  createdAt: 0,
  updatedAt: 0,
  ...extra,
});

const HUB = cache('hub', 'docker.io', ['docker.io']);
const QUAY = cache('quaycache', 'quay.io/prometheus', ['quay.io'], { anonymousPull: false });
const INTERNAL = cache('internal', '10.0.0.5:5000', ['10.0.0.5:5000'], { insecure: true });

describe('nodes-config', () => {
  it('containerd: one hosts.toml per registry, Wharf first, the registry itself as server', () => {
    const r = renderNodesConfig('containerd', [HUB, INTERNAL], { url: 'https://wharf.example:5000', caFile: '/etc/wharf-ca.crt' });
    assert.deepEqual(
      r.files.map((f) => f.path),
      ['/etc/containerd/certs.d/docker.io/hosts.toml', '/etc/containerd/certs.d/10.0.0.5:5000/hosts.toml'],
    );
    assert.match(r.files[0]!.content, /^server = "https:\/\/registry-1\.docker\.io"$/m);
    assert.match(r.files[0]!.content, /^\[host\."https:\/\/wharf\.example:5000"\]$/m);
    assert.match(r.files[0]!.content, /capabilities = \["pull", "resolve"\]/);
    assert.match(r.files[0]!.content, /ca = "\/etc\/wharf-ca\.crt"/);
    assert.match(r.files[1]!.content, /^server = "http:\/\/10\.0\.0\.5:5000"$/m);
  });

  it('k3s/rke2: registries.yaml mirrors with an auth hint when anonymous pulls are off', () => {
    const r = renderNodesConfig('rke2', [HUB, QUAY], { url: 'http://10.1.1.1:5000' });
    assert.equal(r.files[0]!.path, '/etc/rancher/rke2/registries.yaml');
    const text = r.files[0]!.content;
    assert.match(text, /"docker\.io":\n {4}endpoint:\n {6}- "http:\/\/10\.1\.1\.1:5000"/);
    assert.match(text, /"quay\.io":/);
    assert.match(text, /^# configs:\n# {3}"10\.1\.1\.1:5000":\n# {5}auth: /m);
    assert.ok(r.notes.some((n) => n.includes('quaycache')));
  });

  it('--org-in-path: containerd and k3s endpoints name the organization (override_path), crio and docker say it does not apply', () => {
    const c = renderNodesConfig('containerd', [HUB, QUAY], { url: 'http://wharf:5000', orgInPath: true });
    assert.match(c.files[0]!.content, /^\[host\."http:\/\/wharf:5000\/v2\/hub"\]\n {2}capabilities = \["pull", "resolve"\]\n {2}override_path = true$/m);
    assert.match(c.files[1]!.content, /^\[host\."http:\/\/wharf:5000\/v2\/quaycache"\]$/m);
    const plain = renderNodesConfig('containerd', [HUB], { url: 'http://wharf:5000' });
    assert.doesNotMatch(plain.files[0]!.content, /override_path/);
    const k = renderNodesConfig('k3s', [HUB], { url: 'http://wharf:5000', orgInPath: true });
    assert.match(k.files[0]!.content, /"docker\.io":\n {4}endpoint:\n {6}- "http:\/\/wharf:5000\/v2\/hub"/);
    assert.ok(renderNodesConfig('docker', [HUB], { url: 'http://wharf:5000', orgInPath: true }).notes.some((n) => n.includes('--org-in-path')));
  });

  it('crio: the organization as the mirror path, and a namespaced upstream keeps its namespace in the prefix', () => {
    const r = renderNodesConfig('crio', [HUB, QUAY], { url: 'http://wharf:5000' });
    const text = r.files[0]!.content;
    assert.match(text, /prefix = "docker\.io"\nlocation = "docker\.io"\n\n\[\[registry\.mirror\]\]\nlocation = "wharf:5000\/hub"\ninsecure = true/);
    assert.match(text, /prefix = "quay\.io\/prometheus"/);
    assert.match(text, /location = "wharf:5000\/quaycache"/);
  });

  it('docker: registry-mirrors, and a note when no default organization is configured', () => {
    const r = renderNodesConfig('docker', [HUB], { url: 'http://wharf:5000' });
    assert.deepEqual(JSON.parse(r.files[0]!.content), { 'registry-mirrors': ['http://wharf:5000'], 'insecure-registries': ['wharf:5000'] });
    assert.ok(r.notes.some((n) => n.includes('default_organization') && n.includes('hub')));
    const ok = renderNodesConfig('docker', [HUB], { url: 'https://wharf:5000', defaultOrganization: 'hub' });
    assert.ok(!ok.notes.some((n) => n.includes('default_organization')));
  });

  it('says so when no organization answers for any registry', () => {
    const r = renderNodesConfig('containerd', [], { url: 'https://wharf:5000' });
    assert.equal(r.files.length, 0);
    assert.ok(r.notes[0]!.includes('no proxy organization'));
  });

  it('prints one file exactly as it is, and several each after a # comment naming its path', () => {
    for (const format of NODE_FORMATS) {
      const one = renderNodesConfig(format, [HUB], { url: 'http://wharf:5000', defaultOrganization: 'hub' });
      assert.equal(one.files.length, 1, format);
      assert.equal(formatNodesConfig(one), one.files[0]!.content, format);
    }
    const two = renderNodesConfig('containerd', [HUB, QUAY], { url: 'http://wharf:5000' });
    const text = formatNodesConfig(two);
    assert.ok(text.startsWith(`# /etc/containerd/certs.d/docker.io/hosts.toml\n${two.files[0]!.content}\n# /etc/containerd/certs.d/quay.io/hosts.toml\n`), text);
    assert.equal(formatNodesConfig(renderNodesConfig('containerd', [], { url: 'http://wharf:5000' })), '');
  });

  it('docker: the output is daemon.json itself, JSON from its first byte', () => {
    for (const url of ['http://wharf:5000', 'https://wharf:5000']) {
      const text = formatNodesConfig(renderNodesConfig('docker', [HUB], { url, caFile: '/etc/ca.crt' }));
      const doc = JSON.parse(text) as Record<string, string[]>;
      assert.deepEqual(doc['registry-mirrors'], [url]);
      assert.equal(doc['insecure-registries'] !== undefined, url.startsWith('http:'));
    }
  });

  it('k3s/rke2: registries.yaml parses (yaml), every configs entry is a mapping of known keys, never null', () => {
    const variants: Array<[string, string | undefined, ProxyCacheSummary[], boolean?]> = [
      ['http://10.1.1.1:5000', undefined, [HUB]],
      ['http://10.1.1.1:5000', undefined, [HUB, QUAY]],
      ['https://wharf.example:5000', undefined, [HUB]],
      ['https://wharf.example:5000', undefined, [HUB, QUAY], true],
      ['https://wharf.example:5000', '/etc/wharf ca.crt', [HUB]],
      ['https://wharf.example:5000', '/etc/wharf-ca.crt', [HUB, QUAY, INTERNAL], true],
      ['http://10.1.1.1:5000', undefined, []],
    ];
    for (const format of ['k3s', 'rke2'] as const) {
      for (const [url, caFile, caches, orgInPath] of variants) {
        const what = `${format} ${url} ca=${caFile} ${caches.map((c) => c.organization).join(',')}`;
        const doc = parseYaml(renderNodesConfig(format, caches, { url, caFile, orgInPath }).files[0]!.content) as Record<string, unknown>;
        checkRegistriesYaml(doc, what);
        const mirrors = doc.mirrors as Record<string, { endpoint: string[] }>;
        assert.deepEqual(Object.keys(mirrors), caches.flatMap((c) => c.answersFor), what);
        for (const c of caches) for (const h of c.answersFor) assert.deepEqual(mirrors[h]!.endpoint, [orgInPath ? `${url}/v2/${c.organization}` : url], what);
        const configs = doc.configs as Record<string, { tls?: { ca_file?: string } }> | undefined;
        if (caFile) assert.deepEqual(configs, { [new URL(url).host]: { tls: { ca_file: caFile } } }, what);
        else assert.equal(configs, undefined, `${what}: no configs entry without a real setting`);
      }
    }
    const hinted = renderNodesConfig('k3s', [HUB, QUAY], { url: 'https://wharf.example:5000' }).files[0]!.content;
    assert.match(hinted, /^# configs:\n# {3}"wharf\.example:5000":\n# {5}tls:\n# {7}ca_file: /m);
    assert.match(hinted, /^# {5}auth: .*quaycache/m);
  });

  it('writes each file at its node path under --output-dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-nodes-config-'));
    try {
      const rendered = renderNodesConfig('containerd', [HUB, INTERNAL], { url: 'http://wharf:5000' });
      const written = await writeNodesConfig(rendered, dir);
      assert.deepEqual(written, [join(dir, 'etc/containerd/certs.d/docker.io/hosts.toml'), join(dir, 'etc/containerd/certs.d/10.0.0.5:5000/hosts.toml')]);
      for (const [i, path] of written.entries()) {
        assert.equal(await readFile(path, 'utf8'), rendered.files[i]!.content);
        assert.equal((await stat(path)).mode & 0o777, 0o644);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The shape k3s and RKE2 read from registries.yaml (mirrors.<host>.endpoint|rewrite, configs.<host>.auth|tls). */
function checkRegistriesYaml(doc: Record<string, unknown>, what: string): void {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  assert.ok(isMap(doc), what);
  assert.deepEqual(Object.keys(doc).filter((k) => k !== 'mirrors' && k !== 'configs'), [], what);
  assert.ok(isMap(doc.mirrors), `${what}: mirrors is a mapping`);
  for (const [host, m] of Object.entries(doc.mirrors)) {
    assert.ok(isMap(m) && Array.isArray(m.endpoint) && m.endpoint.length > 0 && m.endpoint.every((e) => typeof e === 'string' && new URL(e)), `${what}: mirrors.${host}`);
  }
  if (doc.configs === undefined) return;
  assert.ok(isMap(doc.configs), `${what}: configs is a mapping`);
  const known: Record<string, string[]> = { auth: ['username', 'password', 'auth', 'identity_token'], tls: ['ca_file', 'cert_file', 'key_file', 'insecure_skip_verify'] };
  for (const [host, c] of Object.entries(doc.configs)) {
    assert.ok(isMap(c) && Object.keys(c).length > 0, `${what}: configs.${host} is a non-empty mapping, got ${JSON.stringify(c)}`);
    for (const [section, v] of Object.entries(c)) {
      assert.ok(known[section] && isMap(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => known[section]!.includes(k)), `${what}: configs.${host}.${section} = ${JSON.stringify(v)}`);
    }
  }
}
