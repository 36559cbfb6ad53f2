/** The upstream client against a real registry: Debian's docker-registry (CNCF Distribution). */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startDistribution, type DistributionProcess } from '../../test/helpers/distribution-process.js';
import { buildImage, buildMultiArchImage, KiB, largeLayer, type BuiltImage, type BuiltMultiArchImage } from '../../test/helpers/oci-layout.js';
import { dockerRef, ociRef, skopeoCopy } from '../../test/helpers/skopeo.js';
import { UpstreamNotFoundError } from './errors.js';
import { SsrfGuard, parseUpstreamSpec, upstreamRepository } from './ssrf.js';
import { UpstreamClient } from './upstream-client.js';

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('UpstreamClient against docker-registry', () => {
  let registry: DistributionProcess;
  let layout: string;
  let image: BuiltImage;
  let multi: BuiltMultiArchImage;
  let client: UpstreamClient;

  before(async () => {
    registry = await startDistribution();
    layout = await mkdtemp(join(tmpdir(), 'wharf-upstream-layout-'));
    image = await buildImage(layout, {
      tag: 'v1',
      seed: 'upstream-client',
      layers: [{ files: [{ path: 'etc/hello', content: 'hello\n' }] }, largeLayer(300 * KiB)],
    });
    multi = await buildMultiArchImage(layout, { tag: 'multi', platforms: ['linux/amd64', 'linux/arm64'], seed: 'upstream-multi' });
    await skopeoCopy(ociRef(layout, 'v1'), dockerRef(registry.host, 'team/app', 'v1'), { preserveDigests: true });
    await skopeoCopy(ociRef(layout, 'v1'), dockerRef(registry.host, 'team/app', 'v2'), { preserveDigests: true });
    await skopeoCopy(ociRef(layout, 'multi'), dockerRef(registry.host, 'team/app', 'multi'), { all: true, preserveDigests: true });
    client = new UpstreamClient({
      spec: parseUpstreamSpec(registry.host, { insecure: true }),
      guard: new SsrfGuard({ allow: ['127.0.0.1/32'] }),
    });
  });

  after(async () => {
    await client?.close();
    await registry?.stop();
    if (layout) await rm(layout, { recursive: true, force: true });
  });

  it('HEADs a manifest by tag and by digest', async () => {
    const want = { digest: image.manifestDigest, mediaType: image.manifestMediaType, size: image.manifestSize };
    assert.deepEqual(await client.headManifest('team/app', 'v1'), want);
    assert.deepEqual(await client.headManifest('team/app', image.manifestDigest), want);
  });

  it('GETs a manifest by tag and by digest, byte for byte', async () => {
    for (const ref of ['v1', image.manifestDigest]) {
      const m = await client.getManifest('team/app', ref);
      assert.equal(m.digest, image.manifestDigest);
      assert.equal(m.mediaType, image.manifestMediaType);
      assert.deepEqual(m.bytes, image.manifestBytes);
    }
  });

  it('GETs an image index and its children', async () => {
    const index = await client.getManifest('team/app', 'multi');
    assert.equal(index.digest, multi.indexDigest);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(index.bytes, multi.indexBytes);
    for (const child of multi.images) {
      const m = await client.getManifest('team/app', child.manifestDigest);
      assert.deepEqual(m.bytes, child.manifestBytes);
    }
  });

  it('GETs a blob whole (verified) and by range', async () => {
    const layer = image.layers[1]!;
    const whole = await client.getBlob('team/app', layer.digest);
    assert.equal(whole.status, 200);
    assert.equal(whole.size, layer.size);
    const bytes = await drain(whole.stream);
    assert.equal(bytes.length, layer.size);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest);

    const part = await client.getBlob('team/app', layer.digest, { start: 100, end: 1099 });
    assert.equal(part.status, 206);
    assert.equal(part.size, 1000);
    assert.deepEqual(part.contentRange, { start: 100, end: 1099, total: layer.size });
    assert.deepEqual(await drain(part.stream), bytes.subarray(100, 1100));

    const tail = await client.getBlob('team/app', layer.digest, { start: layer.size - 10 });
    assert.equal(tail.status, 206);
    assert.deepEqual(await drain(tail.stream), bytes.subarray(layer.size - 10));
  });

  it('a consumer that stops reading a blob early releases the connection', async () => {
    const blob = await client.getBlob('team/app', image.layers[1]!.digest);
    for await (const _chunk of blob.stream) break;
    assert.equal((await client.headManifest('team/app', 'v2')).digest, image.manifestDigest);
  });

  it('lists tags (Distribution 2.8 does not paginate tags; pagination is covered by the fault tests)', async () => {
    const all = await client.listTags('team/app');
    assert.equal(all.name, 'team/app');
    assert.deepEqual([...all.tags].sort(), ['multi', 'v1', 'v2']);
    assert.equal(all.next, undefined);
  });

  it('referrers: no referrers API → tag-schema fallback → empty', async () => {
    assert.deepEqual(await client.referrers('team/app', image.manifestDigest), { manifests: [], source: 'tag-schema' });
  });

  it('404s carry the upstream code and message', async () => {
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => client.getManifest('team/app', 'nope'), 'MANIFEST_UNKNOWN'],
      [() => client.headManifest('team/app', 'nope'), ''], // a HEAD has no body to carry a code
      [() => client.getManifest('team/missing', 'v1'), 'MANIFEST_UNKNOWN'],
      [() => client.getBlob('team/app', `sha256:${'0'.repeat(64)}`), 'BLOB_UNKNOWN'],
      [() => client.listTags('team/missing'), 'NAME_UNKNOWN'],
    ];
    for (const [p, code] of cases) {
      await assert.rejects(p(), (e: unknown) => e instanceof UpstreamNotFoundError && (code === '' || (e.code === code && e.message.length > 0)), code);
    }
    assert.equal(client.breaker.state, 'closed');
    assert.equal(client.breaker.snapshot().consecutiveFailures, 0);
  });

  it('a namespace-scoped upstream maps client paths', async () => {
    const spec = parseUpstreamSpec(`${registry.host}/team`, { insecure: true });
    const scoped = new UpstreamClient({ spec, guard: new SsrfGuard({ allow: ['127.0.0.1'] }) });
    try {
      assert.equal((await scoped.headManifest(upstreamRepository(spec, 'app'), 'v1')).digest, image.manifestDigest);
    } finally {
      await scoped.close();
    }
  });
});
