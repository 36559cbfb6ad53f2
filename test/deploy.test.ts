/**
 * The deployment files under deploy/ against the code they start: the systemd units pass
 * `systemd-analyze verify`; every WHARF_* variable they, the container build file and the Kubernetes
 * manifests set names a configuration key; the Kubernetes configuration loads through the real loader;
 * probes, ports and grace periods agree with it; the container build copies files that exist and its
 * production install (`npm prune --omit=dev`) keeps every package the server imports.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { configLeaves, loadConfig } from '../src/config/load.js';

const root = resolve(import.meta.dirname, '..');
const deploy = join(root, 'deploy');
const knownEnv = new Set([...configLeaves().map((l) => l.env), 'WHARF_ADMIN_PASSWORD']);

function unknownWharfVariables(names: Iterable<string>): string[] {
  return [...names].filter((n) => n.startsWith('WHARF_') && !knownEnv.has(n));
}

describe('deploy/systemd', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-units-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('every unit passes systemd-analyze verify (the template as an instance)', async () => {
    const units = await readdir(join(deploy, 'systemd'));
    assert.deepEqual(units.sort(), ['wharf.service', 'wharf.target', 'wharf@.service']);
    for (const unit of units) {
      // The units name Debian's /usr/bin/node; verify checks that the executable exists, so point it
      // at the node running this test where that differs.
      const text = (await readFile(join(deploy, 'systemd', unit), 'utf8')).replaceAll('/usr/bin/node ', `${process.execPath} `);
      const path = join(dir, unit.replace('@.', '@5001.'));
      await writeFile(path, text);
      const res = await new Promise<{ code: number; out: string }>((done) =>
        execFile('systemd-analyze', ['verify', path], (err, stdout, stderr) => done({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr })),
      );
      assert.equal(res.code, 0, `${unit}: ${res.out}`);
      assert.equal(res.out.trim(), '', `${unit} draws warnings: ${res.out}`);
    }
  });

  it('units set only WHARF_* variables that name configuration keys, and outlast shutdown_timeout', async () => {
    for (const unit of ['wharf.service', 'wharf@.service']) {
      const text = await readFile(join(deploy, 'systemd', unit), 'utf8');
      const names = [...text.matchAll(/^Environment=(WHARF_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
      assert.deepEqual(unknownWharfVariables(names), [], unit);
      const stop = Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1]);
      assert.ok(stop * 1000 > loadConfig({ env: {} }).shutdown_timeout, `${unit}: TimeoutStopSec ${stop}`);
      assert.match(text, /^ExecStart=\/usr\/bin\/node \/opt\/wharf\/bin\/wharf\.js serve /m);
      assert.match(text, /^RestartPreventExitStatus=2$/m, 'a configuration mistake (exit 2) is not restarted in a loop');
    }
  });
});

describe('deploy/kubernetes/wharf.yaml', () => {
  const load = async () => {
    const docs = parseAllDocuments(await readFile(join(deploy, 'kubernetes', 'wharf.yaml'), 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, []);
    const objects = docs.map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string>; stringData?: Record<string, string>; spec?: any });
    const byKind = (kind: string) => {
      const found = objects.find((o) => o.kind === kind);
      assert.ok(found, `a ${kind}`);
      return found;
    };
    return { objects, byKind };
  };

  it('the ConfigMap and the Secret give a configuration the loader accepts: PostgreSQL and S3, shared by every pod', async () => {
    const { byKind } = await load();
    const dir = await mkdtemp(join(tmpdir(), 'wharf-k8s-'));
    try {
      const file = join(dir, 'wharf.yaml');
      await writeFile(file, byKind('ConfigMap').data!['wharf.yaml']!);
      const env = byKind('Secret').stringData!;
      assert.deepEqual(unknownWharfVariables(Object.keys(env)), []);
      const config = loadConfig({ file, env });
      assert.equal(config.storage.driver, 's3');
      assert.match(config.db.url ?? '', /^postgres:\/\//);
      assert.ok(env.WHARF_PROXY_CACHE_SECRET_KEY, 'pods share the key sealing upstream credentials');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the Deployment mounts that configuration, probes /health/instance for readiness, and outlasts shutdown_timeout', async () => {
    const { byKind } = await load();
    const config = loadConfig({ env: {}, overrides: {} });
    const cm = byKind('ConfigMap');
    const deployment = byKind('Deployment');
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    const port = container.ports.find((p: { name: string }) => p.name === 'http').containerPort;
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config');
    const configArg = container.args[container.args.indexOf('--config') + 1];
    assert.equal(configArg, `${mount.mountPath}/wharf.yaml`);
    assert.ok(Object.keys(cm.data!).includes('wharf.yaml'));
    assert.equal(pod.volumes.find((v: { name: string }) => v.name === 'config').configMap.name, cm.metadata.name);
    assert.equal(container.envFrom[0].secretRef.name, byKind('Secret').metadata.name);
    const env = container.env as Array<{ name: string; value?: string }>;
    assert.deepEqual(unknownWharfVariables(env.map((e) => e.name)), []);
    // Pods reach each other by address (cross-process fills); a pod's host name resolves only inside it.
    const advertise = env.find((e) => e.name === 'WHARF_CLUSTER_ADVERTISE_URL')?.value;
    assert.equal(advertise, `http://$(POD_IP):${port}`);
    assert.ok(env.findIndex((e) => e.name === 'POD_IP') < env.findIndex((e) => e.name === 'WHARF_CLUSTER_ADVERTISE_URL'), 'POD_IP is defined before it is used');
    assert.equal(container.readinessProbe.httpGet.path, '/health/instance');
    assert.equal(container.livenessProbe.httpGet.path, '/v2/');
    assert.equal(port, (parseAllDocuments(cm.data!['wharf.yaml']!)[0]!.toJS() as { port: number }).port);
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > config.shutdown_timeout);
    assert.ok(deployment.spec.replicas >= 2);
    assert.deepEqual(byKind('Service').spec.selector, deployment.spec.selector.matchLabels);
  });
});

describe('deploy/container/Containerfile', () => {
  const lines = async () => (await readFile(join(deploy, 'container', 'Containerfile'), 'utf8')).replace(/\\\n/g, ' ').split('\n');

  it('copies files that exist, sets only known WHARF_* variables, checks /health/instance and runs bin/wharf.js', async () => {
    const text = await lines();
    for (const line of text.filter((l) => /^COPY /.test(l) && !l.includes('--from='))) {
      const sources = line.trim().split(/\s+/).slice(1, -1);
      for (const s of sources) assert.ok(existsSync(join(root, s)), `${line}: ${s} is missing`);
    }
    const env = text.filter((l) => /^ENV /.test(l)).flatMap((l) => [...l.matchAll(/(WHARF_[A-Z0-9_]+)=/g)].map((m) => m[1]!));
    assert.ok(env.length > 0);
    assert.deepEqual(unknownWharfVariables(env), []);
    assert.ok(text.some((l) => l.startsWith('HEALTHCHECK') && l.includes('/health/instance')));
    assert.ok(text.some((l) => l === 'ENTRYPOINT ["node", "/opt/wharf/bin/wharf.js"]'));
    assert.ok(text.some((l) => l === 'COPY --from=build /src/bin bin'));
  });

  it('every package the server imports is a production dependency (the image prunes the others)', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const imported = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) await walk(path);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('test-suite.ts')) {
          const src = await readFile(path, 'utf8');
          for (const m of src.matchAll(/(?:^import\s[^'"]*?from\s*|^export\s[^'"]*?from\s*|import\()\s*'([^'.][^']*)'/gm)) {
            const spec = m[1]!;
            if (spec.startsWith('node:')) continue;
            imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
          }
        }
      }
    };
    await walk(join(root, 'src'));
    assert.ok(imported.has('fastify') && imported.has('kysely'), [...imported].join(' '));
    const runtimeOnly = [...imported].filter((p) => !(p in pkg.dependencies));
    assert.deepEqual(runtimeOnly, [], 'imported by src/ but not in dependencies');
  });
});
