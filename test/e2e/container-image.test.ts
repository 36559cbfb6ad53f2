/**
 * deploy/container/Containerfile, built as written and its image run.
 *
 * This machine cannot reach Docker Hub, so the base image `docker.io/library/node:20-bookworm-slim` is
 * a stand-in made from Debian bookworm and this machine's Node 20 (scripts/container/stand-in-node-base.sh)
 * under the same name; the build itself is podman's, from a throw-away store, with `--pull=never`.
 * The kernel here refuses to create containers (no usable cgroup setup for crun or runc), so the image is
 * run the way a runtime would start it, without the isolation: its filesystem mounted, the entrypoint
 * and command from its configuration, as its user, with its environment, and a directory mounted as
 * its volume. What the test proves is the image: the build works from a clean checkout, the image holds
 * the production dependencies and the build output, its configuration (user, entrypoint, port, volume,
 * health check) is what docs/deploy.md says, and it serves pushes and pulls from its volume and stops
 * cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommand } from '../helpers/e2e-utils.js';
import { buildImage } from '../helpers/oci-layout.js';
import { createPodmanStore, runPodman, type PodmanStore } from '../helpers/podman.js';
import { freePort, waitForHttp } from '../helpers/ports.js';
import { dockerRef, ociRef, skopeoCopy } from '../helpers/skopeo.js';

const IMAGE = 'localhost/wharf:container-test';
const BASE = 'docker.io/library/node:20-bookworm-slim';
const MINUTE = 60_000;

interface ImageConfig {
  User: string;
  Entrypoint: string[];
  Cmd: string[];
  Env: string[];
  WorkingDir: string;
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  StopSignal?: string;
}

describe('the container image (deploy/container/Containerfile)', () => {
  let store: PodmanStore;
  let work: string;
  const mounts: string[] = [];
  let server: ChildProcess | undefined;
  let imageRoot: string | undefined;

  before(async () => {
    store = await createPodmanStore({ storageDriver: 'overlay' });
    work = await mkdtemp(join(tmpdir(), 'wharf-container-test-'));
  });
  after(async () => {
    server?.kill('SIGKILL');
    for (const m of mounts.reverse()) await runCommand('umount', ['-l', m]);
    if (imageRoot) await runPodman(store, ['image', 'unmount', IMAGE]).catch(() => {});
    await store?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('builds from a checkout, holds only what production needs, and serves pushes and pulls from its volume', { timeout: 30 * MINUTE }, async () => {
    const baseTar = join(work, 'base.tar');
    const made = await runCommand('bash', ['scripts/container/stand-in-node-base.sh', baseTar], { timeoutMs: 10 * MINUTE });
    assert.equal(made.code, 0, `the stand-in base image: ${made.stderr}`);
    const extraCa = existsSync(process.env.NODE_EXTRA_CA_CERTS ?? '') ? ['--change', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/extra-ca-certificates.crt'] : [];
    // npm_config_nodedir: node-gyp takes Node's headers from the image instead of downloading them.
    const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'npm_config_nodedir=/usr/local'].flatMap((e) => ['--change', `ENV ${e}`]);
    await runPodman(store, ['import', ...env, ...extraCa, '--change', 'CMD ["node"]', baseTar, BASE], { timeoutMs: 5 * MINUTE });
    await rm(baseTar);

    // As docs/deploy.md says, with --format docker (OCI image configurations have no HEALTHCHECK) and
    // chroot isolation for the RUN steps (no container runtime here).
    await runPodman(store, ['build', '--pull=never', '--isolation=chroot', '--format', 'docker', '-f', 'deploy/container/Containerfile', '-t', IMAGE, '.'], { timeoutMs: 25 * MINUTE });

    const inspected = (JSON.parse((await runPodman(store, ['image', 'inspect', IMAGE])).stdout) as Array<{ Config: ImageConfig; Healthcheck?: { Test: string[] } }>)[0]!;
    const config = inspected.Config;
    assert.equal(config.User, 'node');
    assert.deepEqual(config.Entrypoint, ['node', '/opt/wharf/bin/wharf.js']);
    assert.deepEqual(config.Cmd, ['serve']);
    assert.ok(config.ExposedPorts?.['5000/tcp'], 'port 5000 exposed');
    assert.ok(config.Volumes?.['/var/lib/wharf'], '/var/lib/wharf is a volume');
    assert.equal(config.StopSignal, 'SIGTERM');
    assert.match(inspected.Healthcheck?.Test.join(' ') ?? '', /\/health\/instance/);
    for (const v of ['NODE_ENV=production', 'WHARF_DATA_DIR=/var/lib/wharf', 'WHARF_HOST=0.0.0.0', 'WHARF_PORT=5000']) assert.ok(config.Env.includes(v), v);

    imageRoot = (await runPodman(store, ['image', 'mount', IMAGE])).stdout.trim();
    const app = join(imageRoot, 'opt/wharf');
    assert.ok(existsSync(join(app, 'dist')), 'the build output');
    for (const dep of ['fastify', 'kysely', 'better-sqlite3/build/Release/better_sqlite3.node']) assert.ok(existsSync(join(app, 'node_modules', dep)), `${dep} is in the image`);
    for (const dev of ['typescript', 'tsx']) assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} (a development dependency) is not`);
    assert.ok(!existsSync(join(app, 'src')), 'no sources');

    // The volume: a directory owned by the image's user, mounted where the image declares it.
    const volume = join(work, 'volume');
    await mkdir(volume);
    await chown(volume, 1000, 1000);
    for (const [source, target, type] of [
      [volume, join(imageRoot, 'var/lib/wharf'), 'bind'],
      ['proc', join(imageRoot, 'proc'), 'proc'],
    ] as const) {
      const res = await runCommand('mount', type === 'bind' ? ['--bind', source, target] : ['-t', 'proc', source, target]);
      assert.equal(res.code, 0, res.stderr);
      mounts.push(target);
    }

    const port = await freePort();
    const runEnv = [...config.Env.filter((v) => !v.startsWith('WHARF_PORT=')), `WHARF_PORT=${port}`, 'HOME=/home/node'];
    const child = spawn('chroot', ['--userspec=1000:1000', imageRoot, '/usr/bin/env', '-i', ...runEnv, ...config.Entrypoint, ...config.Cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const host = `127.0.0.1:${port}`;
    await waitForHttp(`http://${host}/health/instance`, 2 * MINUTE);
    const password = /Password:\s+(\S+)/.exec(output)?.[1];
    assert.ok(password, `the first start prints the generated admin password:\n${output}`);

    const built = await buildImage(join(work, 'src'), { tag: 'v1', seed: 'container-image', layers: [{ files: [{ path: 'etc/app', size: 64 * 1024 }] }] });
    const creds = { username: 'admin', password };
    const pushed = await skopeoCopy(ociRef(join(work, 'src'), 'v1'), dockerRef(host, 'library/app', 'v1'), { creds, preserveDigests: true });
    assert.equal(pushed.digest, built.manifestDigest);
    const pulled = await skopeoCopy(dockerRef(host, 'library/app', 'v1'), ociRef(join(work, 'out'), 'v1'), { creds, preserveDigests: true });
    assert.equal(pulled.digest, built.manifestDigest);

    // Everything the registry keeps is in the volume, owned by the image's user.
    const kept = await readdir(volume);
    for (const name of ['wharf.db', 'blobs']) assert.ok(kept.includes(name), `${name} in the volume (${kept.join(', ')})`);
    assert.equal((await stat(join(volume, 'wharf.db'))).uid, 1000);

    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 40_000).unref())]);
    assert.equal(code, 0, `wharf serve ends with status 0 on SIGTERM:\n${output.slice(-2000)}`);
    server = undefined;
    assert.ok(output.trim().split('\n').filter((l) => l.startsWith('{')).every((l) => JSON.parse(l)), 'logs are JSON lines');
  });
});
