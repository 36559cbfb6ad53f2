/**
 * Least-recently-pulled eviction of a proxy-cache organization with a quota, as its operators test it:
 * a quota that holds two images; pull image 1, pull image 2, pull image 3 → image 1's tag is gone and
 * 2 and 3 remain; after GC the usage is within the limit and agrees with the bytes in storage; pulling
 * image 1 again works (it is fetched again, evicting 2).
 *
 *   skopeo ──► wharf serve (organization `cache`, quota) ──► Distribution (docker-registry)
 *   wharf gc (the CLI, on the same data directory)
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, DIALECTS } from '../helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { rethrowFailures } from '../helpers/e2e-utils.js';
import { buildImage, largeLayer, MiB, type BuiltImage } from '../helpers/oci-layout.js';
import { dockerRef, ociRef, skopeoCopy, SkopeoError } from '../helpers/skopeo.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';
import { runWharf, type CliResult } from '../helpers/wharf-cli.js';


function wharfCli(dataDir: string, args: string[], dbUrl?: string): Promise<CliResult> {
  return runWharf(dataDir, args, { env: { WHARF_GC_GRACE_PERIOD: '0', ...(dbUrl ? { WHARF_DB_URL: dbUrl } : {}) } });
}

/** Total bytes of the committed blobs of the filesystem driver. */
async function storedBytes(dataDir: string): Promise<{ files: number; bytes: number }> {
  const root = join(dataDir, 'blobs', 'blobs', 'sha256');
  let files = 0;
  let bytes = 0;
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(join(root, prefix))) {
      files++;
      bytes += (await stat(join(root, prefix, name))).size;
    }
  }
  return { files, bytes };
}

for (const dialect of DIALECTS) describe(`proxy cache under a quota: least recently pulled images are evicted (end to end, ${dialect})`, () => {
  let work: string;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let dist: DistributionProcess | undefined;
  let wharf: WharfProcess | undefined;
  const images: BuiltImage[] = [];
  let limit = 0;

  const W = () => wharf!;
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> => {
    const res = await fetch(`${W().url}/api/v1${path}`, {
      method,
      headers: { authorization: basicAuth(W().admin), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  };
  let out = 0;
  const pull = (n: number) =>
    skopeoCopy(dockerRef(W().host, `cache/library/img${n}`, 'latest'), ociRef(join(work, `out-${out++}`), 'pulled'), { creds: W().admin, preserveDigests: true, timeoutMs: 60_000 });
  /** The live tags of `cache/library/img<n>`, and every row of its history. */
  const tags = async (n: number) => {
    const live = await api('GET', `/repository/cache/library%2Fimg${n}/tag/?onlyActiveTags=true`);
    const all = await api('GET', `/repository/cache/library%2Fimg${n}/tag/?onlyActiveTags=false`);
    if (live.status === 404) return { live: [] as string[], all: [] as string[] };
    assert.equal(live.status, 200, live.text);
    return { live: (live.json.tags as Array<{ name: string }>).map((t) => t.name), all: (all.json.tags as Array<{ name: string }>).map((t) => t.name) };
  };
  const usage = async (): Promise<number> => {
    const org = await api('GET', '/organization/cache');
    assert.equal(org.status, 200, org.text);
    return Number(org.json.quota_report.quota_bytes);
  };
  const imageBytes = (img: BuiltImage) => img.configSize + img.layers.reduce((s, l) => s + l.size, 0);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-proxy-quota-'));
    const src = join(work, 'src');
    for (const n of [1, 2, 3]) images.push(await buildImage(src, { tag: `img${n}`, seed: `proxy-quota-${n}`, layers: [largeLayer(1 * MiB, `data/img${n}.bin`)] }));
    if (dialect === 'postgres') database = await createPostgresDatabase();
    const started = await Promise.allSettled([
      startDistribution().then((d) => (dist = d)),
      startWharf({ organizations: ['cache'], env: { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1', WHARF_DB_URL: database?.url } }).then((w) => (wharf = w)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    for (const [i, img] of images.entries()) {
      await skopeoCopy(ociRef(src, img.tag!), dockerRef(dist!.host, `library/img${i + 1}`, 'latest'), { preserveDigests: true, creds: null });
    }
    const cfg = await api('POST', '/organization/cache/proxycache', { upstream_registry: dist!.host, insecure: true });
    assert.equal(cfg.status, 201, cfg.text);
    // Room for two of the images, not three.
    limit = Math.floor(imageBytes(images[0]!) * 2.5);
    const q = await api('POST', '/organization/cache/quota', { limit_bytes: limit });
    assert.equal(q.status, 201, q.text);
  });

  after(async () => {
    const stopped = await Promise.allSettled([dist?.stop(), wharf?.stop()]);
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures(stopped);
  });

  it('evicts image 1 for image 3, then image 2 for image 1, and usage agrees with storage after GC', async (t) => {
    try {
      for (const n of [1, 2]) {
        const copied = await pull(n);
        assert.equal(copied.digest, images[n - 1]!.manifestDigest);
      }
      assert.equal(await usage(), imageBytes(images[0]!) + imageBytes(images[1]!));
      await pull(3);
      assert.deepEqual((await tags(1)).all, [], 'image 1 is evicted, history included: it is not restorable');
      assert.deepEqual((await tags(2)).live, ['latest']);
      assert.deepEqual((await tags(3)).live, ['latest']);
      assert.ok((await usage()) <= limit, 'usage drops at eviction');

      const gc = await wharfCli(W().dataDir, ['gc', '--json'], database?.url);
      assert.equal(gc.code, 0, gc.stderr);
      const used = await usage();
      assert.equal(used, imageBytes(images[1]!) + imageBytes(images[2]!));
      const stored = await storedBytes(W().dataDir);
      assert.equal(stored.bytes, used, 'after GC the bytes in storage are exactly what the quota counts');
      const size = await api('GET', '/superuser/registrysize/');
      assert.equal(size.status, 200, size.text);
      assert.equal(size.json.size_bytes, used);

      // Image 1 again: fetched from the upstream once more, evicting image 2 (pulled before image 3).
      const again = await pull(1);
      assert.equal(again.digest, images[0]!.manifestDigest);
      assert.deepEqual((await tags(2)).all, []);
      assert.deepEqual((await tags(1)).live, ['latest']);
      assert.deepEqual((await tags(3)).live, ['latest']);
      assert.ok((await usage()) <= limit);
    } catch (err) {
      t.diagnostic(`wharf output (tail):\n${wharf?.output().slice(-4000)}`);
      throw err;
    }
  });

  it('a pull of a cached tag refreshes its recency: the tag pulled longest ago goes first', async () => {
    // Now cached: 3 (pulled first), then 1. Pulling 3 again makes 1 the least recently pulled.
    await new Promise((r) => setTimeout(r, 1100));
    await pull(3);
    await new Promise((r) => setTimeout(r, 300));
    await pull(2);
    assert.deepEqual((await tags(1)).all, [], 'image 1 was pulled longest ago');
    assert.deepEqual((await tags(3)).live, ['latest']);
    assert.deepEqual((await tags(2)).live, ['latest']);
  });

  it('refuses an image larger than the whole quota with the quota error, evicting nothing', async () => {
    const before = await usage();
    const q = await api('GET', '/organization/cache/quota');
    const id = q.json[0].id;
    const shrink = await api('PUT', `/organization/cache/quota/${id}`, { limit_bytes: Math.floor(imageBytes(images[0]!) / 2) });
    assert.equal(shrink.status, 200, shrink.text);
    await assert.rejects(pull(1), (err: SkopeoError) => /Quota has been exceeded on namespace cache|denied/i.test(err.stderr));
    assert.equal(await usage(), before, 'nothing was evicted for an image that can never fit');
    assert.deepEqual((await tags(2)).live, ['latest']);
    assert.deepEqual((await tags(3)).live, ['latest']);
  });
});
