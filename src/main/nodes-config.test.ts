import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyCacheSummary } from '../registry/proxy/proxy-config.js';
import { formatNodesConfig, renderNodesConfig } from './nodes-config.js';

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
    assert.match(text, /configs:\n {2}"10\.1\.1\.1:5000":/);
    assert.match(text, /# auth:/);
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
    assert.match(formatNodesConfig(renderNodesConfig('containerd', [HUB], { url: 'https://w:1' }), 'containerd'), /^# \/etc\/containerd\/certs\.d\/docker\.io\/hosts\.toml\n/);
  });
});
