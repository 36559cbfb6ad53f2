/**
 * `wharf nodes-config` end to end: the real CLI prints (or writes) each format for a real Wharf whose
 * proxy organizations front Debian's docker-registry (CNCF Distribution), and the files are read by the
 * programs they are for, which then pull through Wharf:
 *
 *   docker      JSON.parse, then `dockerd --config-file daemon.json` starts and `docker pull` goes
 *               through the registry mirror (proxy_cache.default_organization)
 *   containerd  `ctr images pull --hosts-dir` reads each hosts.toml (with and without --org-in-path)
 *   crio        podman reads the drop-in (containers/image, as CRI-O does) and pulls through the mirror
 *   k3s, rke2   parsed with `yaml` and checked against the keys k3s reads
 *
 * The image names' real registries (docker.io, registry.wharf.test) are never reached: a pull can only
 * succeed through Wharf.
 *
 *   ctr / dockerd / podman ──► wharf (hub: docker.io, node: registry.wharf.test) ──► Distribution
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ctrPull, ctrRemoveImages, CtrError, startContainerd, type ContainerdProcess } from '../helpers/containerd.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { DockerdStartError, startDockerd, type DockerdProcess } from '../helpers/dockerd.js';
import { buildImage, KiB, type BuiltImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanPull } from '../helpers/podman.js';
import { dockerRef, ociRef, skopeoCopy } from '../helpers/skopeo.js';
import { runWharf, type CliResult } from '../helpers/wharf-cli.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const NODE_REGISTRY = 'registry.wharf.test';

describe('wharf nodes-config: the files start real daemons and pull through Wharf', () => {
  let work: string;
  let dist: DistributionProcess | undefined;
  let wharf: WharfProcess | undefined;
  let containerd: ContainerdProcess | undefined;
  let image: BuiltImage;
  const W = (): WharfProcess => wharf!;

  /** `wharf nodes-config ARGS` on the running Wharf's database, as its operator would run it. */
  const nodesConfig = async (args: string[]): Promise<CliResult> => {
    const res = await runWharf(W().dataDir, ['nodes-config', '--url', W().url, ...args], { env: { WHARF_DB_URL: W().dbUrl, WHARF_PROXY_CACHE_DEFAULT_ORGANIZATION: 'hub' } });
    assert.equal(res.code, 0, `nodes-config ${args.join(' ')}: ${res.stderr}`);
    return res;
  };
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-3000)}`);
        if (containerd) t.diagnostic(`containerd output (tail):\n${containerd.output().slice(-1500)}`);
        throw err;
      }
    });
  };
  /** The tags Wharf holds for a repository (proof that a pull went through it). */
  const wharfTags = async (repo: string): Promise<string[]> => {
    const res = await fetch(`${W().url}/v2/${repo}/tags/list`, { headers: { authorization: basicAuth(W().admin) } });
    return res.status === 200 ? ((await res.json()) as { tags: string[] }).tags : [];
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-nodes-'));
    const src = join(work, 'src');
    image = await buildImage(src, { tag: 'app', seed: 'nodes-config', layers: [{ files: [{ path: 'etc/os-release', content: 'NAME=nodes\n' }, { path: 'usr/lib/base.bin', size: 32 * KiB }] }] });
    const started = await Promise.allSettled([
      startDistribution().then((d) => (dist = d)),
      startWharf({ organizations: ['hub', 'node'], env: { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1', WHARF_PROXY_CACHE_DEFAULT_ORGANIZATION: 'hub' } }).then((w) => (wharf = w)),
      startContainerd().then((c) => (containerd = c)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    await skopeoCopy(ociRef(src, 'app'), dockerRef(dist!.host, 'library/app', '1'), { preserveDigests: true });
    for (const [org, answersFor] of [['hub', 'docker.io'], ['node', NODE_REGISTRY]] as const) {
      const res = await fetch(`${W().url}/api/v1/organization/${org}/proxycache`, {
        method: 'POST',
        headers: { authorization: basicAuth(W().admin), 'content-type': 'application/json' },
        body: JSON.stringify({ upstream_registry: dist!.host, insecure: true, anonymous_pull: true, answers_for: [answersFor] }),
      });
      assert.equal(res.status, 201, `${org}: ${await res.text()}`);
    }
  });

  after(async () => {
    await Promise.allSettled([containerd?.stop(), dist?.stop(), wharf?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('docker: stdout is daemon.json itself; dockerd starts with it and docker pull goes through the Wharf mirror', async (t) => {
    const res = await nodesConfig(['--format', 'docker']);
    assert.deepEqual(JSON.parse(res.stdout), { 'registry-mirrors': [W().url], 'insecure-registries': [W().host] });
    assert.match(res.stderr, /^note: this is \/etc\/docker\/daemon\.json on the node$/m);
    const daemonJson = join(work, 'daemon.json');
    await writeFile(daemonJson, res.stdout);

    let dockerd: DockerdProcess | undefined;
    try {
      dockerd = await startDockerd(daemonJson);
      const info = await dockerd.docker(['info', '--format', '{{json .RegistryConfig.Mirrors}}']);
      assert.deepEqual(JSON.parse(info.stdout), [`${W().url}/`]);
      await dockerd.docker(['pull', 'app:1'], { timeoutMs: 120_000 });
      const inspect = await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'app:1']);
      assert.deepEqual(JSON.parse(inspect.stdout), [`app@${image.manifestDigest}`]);
      assert.deepEqual(await wharfTags('hub/library/app'), ['1'], 'the pull filled the hub proxy cache');
      // The check has teeth: dockerd refuses to start on a daemon.json with a comment line.
      const commented = join(work, 'commented-daemon.json');
      await writeFile(commented, `// /etc/docker/daemon.json\n${res.stdout}`);
      await assert.rejects(startDockerd(commented), (err: unknown) => err instanceof DockerdStartError && /unable to configure the Docker daemon with file/.test(err.message));
    } catch (err) {
      if (dockerd) t.diagnostic(`dockerd output (tail):\n${dockerd.output().slice(-3000)}`);
      throw err;
    } finally {
      await dockerd?.stop();
    }
  });

  test('containerd: the files printed after their paths are those --output-dir writes; ctr pulls through each hosts.toml, with and without --org-in-path', async () => {
    const printed = await nodesConfig(['--format', 'containerd']);
    assert.match(printed.stderr, /^note: 2 files, each after a comment naming its path on the node; --output-dir DIR writes them/m);
    const sections = printed.stdout.split(/^# (\/etc\/containerd\/certs\.d\/\S+)\n/m);
    assert.deepEqual([sections[0], sections[1], sections[3]], ['', '/etc/containerd/certs.d/docker.io/hosts.toml', `/etc/containerd/certs.d/${NODE_REGISTRY}/hosts.toml`]);

    for (const orgInPath of [false, true]) {
      const root = join(work, `containerd-${orgInPath}`);
      const written = await nodesConfig(['--format', 'containerd', '--output-dir', root, ...(orgInPath ? ['--org-in-path'] : [])]);
      assert.equal(written.stdout, '');
      const hostsDir = join(root, 'etc/containerd/certs.d');
      const hub = await readFile(join(hostsDir, 'docker.io/hosts.toml'), 'utf8');
      const node = await readFile(join(hostsDir, NODE_REGISTRY, 'hosts.toml'), 'utf8');
      assert.match(written.stderr, new RegExp(`^wrote ${join(hostsDir, 'docker.io/hosts.toml').replace(/[.]/g, '\\.')}$`, 'm'));
      if (!orgInPath) assert.equal(`# /etc/containerd/certs.d/docker.io/hosts.toml\n${hub}\n# /etc/containerd/certs.d/${NODE_REGISTRY}/hosts.toml\n${node}`, printed.stdout);
      assert.equal(/override_path = true/.test(hub), orgInPath);
      assert.equal(hub.includes(`[host."${W().url}${orgInPath ? '/v2/hub' : ''}"]`), true, hub);

      for (const ref of ['docker.io/library/app:1', `${NODE_REGISTRY}/library/app:1`]) {
        const pulled = await ctrPull(containerd!, ref, { hostsDir, plainHttp: false });
        assert.equal(pulled.digest, image.manifestDigest, `${ref} (org in path: ${orgInPath})`);
      }
      await ctrRemoveImages(containerd!);
    }
    assert.deepEqual(await wharfTags('node/library/app'), ['1'], 'the pull filled the node proxy cache');

    // The check has teeth: ctr refuses a hosts.toml that is not TOML.
    const broken = join(work, 'broken/certs.d');
    await mkdir(join(broken, 'docker.io'), { recursive: true });
    await writeFile(join(broken, 'docker.io/hosts.toml'), `// not TOML\nserver = "${W().url}"\n`);
    await assert.rejects(ctrPull(containerd!, 'docker.io/library/app:1', { hostsDir: broken, plainHttp: false }), (err: unknown) => err instanceof CtrError && /toml|hosts/i.test(err.message));
  });

  test('crio: the drop-in is read by containers/image (podman) and pulls docker.io and registry.wharf.test images through the organizations', async () => {
    const res = await nodesConfig(['--format', 'crio']);
    const store = await createPodmanStore();
    try {
      await writeFile(store.registriesConf, `unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n${res.stdout}`);
      for (const ref of ['docker.io/library/app:1', `${NODE_REGISTRY}/library/app:1`]) {
        const pulled = await podmanPull(ref, { store, tlsVerify: 'config' });
        assert.equal(pulled.digest, image.manifestDigest, ref);
      }
    } finally {
      await store.cleanup();
    }
    assert.match(res.stderr, /^note: this is \/etc\/containers\/registries\.conf\.d\/50-wharf\.conf on the node$/m);
  });

  test('k3s and rke2: registries.yaml parses; mirrors name Wharf, configs is absent or a mapping k3s reads', async () => {
    const cases: Array<[string, string[]]> = [['k3s', []], ['rke2', ['--org-in-path']], ['k3s', ['--ca-file', '/etc/rancher/wharf ca.crt']]];
    {
      for (const [format, extra] of cases) {
        const res = await nodesConfig(['--format', format, ...extra]);
        const what = `${format} ${extra.join(' ')}`;
        const doc = parseYaml(res.stdout) as { mirrors: Record<string, { endpoint: string[] }>; configs?: Record<string, unknown> };
        const endpoint = (org: string) => [extra[0] === '--org-in-path' ? `${W().url}/v2/${org}` : W().url];
        assert.deepEqual(doc.mirrors, { 'docker.io': { endpoint: endpoint('hub') }, [NODE_REGISTRY]: { endpoint: endpoint('node') } }, what);
        if (extra[0] === '--ca-file') assert.deepEqual(doc.configs, { [W().host]: { tls: { ca_file: extra[1] } } }, what);
        else assert.equal('configs' in doc, false, `${what}: plain HTTP and anonymous pulls need no configs entry, got ${JSON.stringify(doc.configs)}`);
        assert.match(res.stderr, new RegExp(`^note: this is /etc/rancher/${format}/registries\\.yaml on the node$`, 'm'), what);
      }
    }
  });
});
