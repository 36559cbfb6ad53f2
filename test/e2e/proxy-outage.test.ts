/**
 * An upstream outage and its end, with real processes only: a `wharf serve` proxy organization in front
 * of Debian's docker-registry (CNCF Distribution, htpasswd auth).
 *
 *   1. skopeo pulls one image through the proxy: it is cached.
 *   2. Distribution stops for 30 s. Meanwhile the cached image keeps pulling (served stale), and
 *      manifests and blobs never cached get a clear 503 UNAVAILABLE at once, never a 500 or a hang.
 *   3. Distribution starts again at the same address with the same content. A pull of an image never
 *      cached must succeed within 2 s of the upstream answering again, as it would from Distribution
 *      itself: the circuit breaker, whose cool-down grew long during the outage, lets a pull with
 *      nothing cached probe the upstream at least once a second.
 *
 * The first cool-down is set to 3 s so that over 30 s of failed probes it doubles to 24 s (3, 6, 12, 24):
 * the next probe the cool-down alone would allow comes some 15 s after the upstream is back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { rethrowFailures } from '../helpers/e2e-utils.js';
import { buildImage, KiB, type BuiltImage } from '../helpers/oci-layout.js';
import { digestOf, dockerRef, ociRef, skopeoCopy, skopeoInspect, SkopeoError, type Credentials } from '../helpers/skopeo.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

/** The upstream Distribution's user, given to the proxy organization. */
const PULLER: Credentials = { username: 'puller', password: 'puller-upstream-password' };
const HTPASSWD = { htpasswd: { realm: 'wharf-e2e-upstream', users: { [PULLER.username]: PULLER.password } } };
/** How long the upstream stays down while clients keep pulling (the scenario). */
const OUTAGE_MS = 30_000;
/** An uncached pull must succeed this soon after the upstream answers again (the requirement). */
const RECOVERY_MS = 2_000;
/** How long the test keeps trying after that, so that a failure reports when the first pull did succeed. */
const GIVE_UP_MS = 20_000;
/** A request that has not answered after this long is a hang (an outage must fail fast). */
const HANG_MS = 20_000;
const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

interface OciError {
  errors: Array<{ code: string; message: string }>;
}

describe('proxy cache: an upstream outage and its end', () => {
  let work: string;
  let dist: DistributionProcess | undefined;
  let wharf: WharfProcess | undefined;
  const img = {} as Record<'cached' | 'during' | 'after', BuiltImage>;
  let outCounter = 0;

  const W = (): WharfProcess => wharf!;
  const pullWithSkopeo = (repo: string, tag: string) =>
    skopeoCopy(dockerRef(W().host, repo, tag), ociRef(join(work, `out-${outCounter++}`), 'pulled'), { creds: W().admin, preserveDigests: true, timeoutMs: HANG_MS });
  const v2 = (path: string, init: RequestInit = {}) =>
    fetch(`${W().url}/v2/${path}`, { ...init, signal: AbortSignal.timeout(HANG_MS), headers: { accept: MANIFEST_ACCEPT, authorization: basicAuth(W().admin) } });

  /** A 503 UNAVAILABLE naming the upstream, in the OCI error envelope. */
  const assertUnavailable = async (res: Response, what: string): Promise<void> => {
    const text = await res.text();
    assert.equal(res.status, 503, `${what}: ${text}`);
    assert.match(res.headers.get('content-type') ?? '', /json/, what);
    const body = JSON.parse(text) as OciError;
    assert.equal(body.errors[0]!.code, 'UNAVAILABLE', what);
    assert.match(body.errors[0]!.message, /upstream registry 127\.0\.0\.1:\d+ is unavailable/, what);
  };

  /**
   * Pulls `image` as a client does (manifest GET, then the config and every layer), checking every
   * digest. False when the manifest GET is refused with 503 UNAVAILABLE; any other failure throws.
   */
  const pullWithHttp = async (repo: string, tag: string, image: BuiltImage): Promise<boolean> => {
    const res = await v2(`${repo}/manifests/${tag}`);
    if (res.status !== 200) {
      await assertUnavailable(res, `${repo}:${tag}`);
      return false;
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(digestOf(bytes), image.manifestDigest);
    for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) {
      const blob = await v2(`${repo}/blobs/${digest}`);
      assert.equal(blob.status, 200, `blob ${digest}`);
      assert.equal(digestOf(Buffer.from(await blob.arrayBuffer())), digest);
    }
    return true;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-outage-'));
    const src = join(work, 'src');
    // One layout, so the builds run one after the other (each rewrites index.json).
    for (const [i, tag] of (['cached', 'during', 'after'] as const).entries()) {
      img[tag] = await buildImage(src, {
        tag,
        seed: `outage-${tag}`,
        layers: [{ files: [{ path: 'etc/os-release', content: `NAME=${tag}\n` }, { path: 'usr/lib/base.bin', size: 32 * KiB + i }] }],
      });
    }
    const started = await Promise.allSettled([
      startDistribution({ auth: HTPASSWD }).then((d) => (dist = d)),
      startWharf({
        organizations: ['hub'],
        env: { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1', WHARF_PROXY_CACHE_BREAKER_COOLDOWN: '3s' },
      }).then((w) => (wharf = w)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    for (const tag of ['cached', 'during', 'after'] as const) {
      await skopeoCopy(ociRef(src, tag), dockerRef(dist!.host, `library/${tag}`, '1'), { preserveDigests: true, creds: PULLER });
    }
    const res = await fetch(`${W().url}/api/v1/organization/hub/proxycache`, {
      method: 'POST',
      headers: { authorization: basicAuth(W().admin), 'content-type': 'application/json' },
      body: JSON.stringify({ upstream_registry: dist!.host, insecure: true, upstream_registry_username: PULLER.username, upstream_registry_password: PULLER.password }),
    });
    assert.equal(res.status, 201, await res.text());
  });

  after(async () => {
    const stopped = await Promise.allSettled([dist?.stop(), wharf?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures(stopped);
  });

  it('cached pulls are served and uncached ones fail fast for 30 s; once the upstream is back, an uncached pull succeeds within 2 s', async (t) => {
    try {
      assert.equal((await pullWithSkopeo('hub/library/cached', '1')).digest, img.cached.manifestDigest);
      const { dataDir } = dist!;
      const port = Number(dist!.host.slice(dist!.host.lastIndexOf(':') + 1));
      await dist!.stop({ keepData: true });

      const stoppedAt = Date.now();
      const during = img.during;
      let rounds = 0;
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        rounds++;
        // The cached image: a real client pulls it, served from the copy.
        assert.equal((await pullWithSkopeo('hub/library/cached', '1')).digest, img.cached.manifestDigest);
        const head = await v2('hub/library/cached/manifests/1', { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('x-wharf-cache'), 'stale');
        // Never cached: by tag, by digest and a blob, each a clear 503 at once.
        assert.equal(await pullWithHttp('hub/library/during', '1', during), false);
        await assertUnavailable(await v2(`hub/library/during/manifests/${during.manifestDigest}`), 'manifest by digest');
        await assertUnavailable(await v2(`hub/library/during/blobs/${during.layers[0]!.digest}`), 'blob');
        if (rounds % 10 === 1) {
          // containers/image shows the status line of a 503.
          await assert.rejects(skopeoInspect(dockerRef(W().host, 'hub/library/during', '1'), { creds: W().admin, noTags: true, timeoutMs: HANG_MS }), (err: SkopeoError) =>
            /received unexpected HTTP status: 503 Service Unavailable/.test(err.stderr),
          );
        }
      }

      dist = await startDistribution({ auth: HTPASSWD, port, dataDir });
      const backAt = Date.now();
      let attempts = 0;
      let recoveredAfter: number | undefined;
      while (recoveredAfter === undefined && Date.now() - backAt < GIVE_UP_MS) {
        attempts++;
        if (await pullWithHttp('hub/library/during', '1', during)) recoveredAfter = Date.now() - backAt;
        else await sleep(50);
      }
      t.diagnostic(`${rounds} rounds of pulls during the outage; first uncached pull after it: ${recoveredAfter ?? 'none'} ms, attempt ${attempts}`);
      assert.ok(recoveredAfter !== undefined, `no uncached pull succeeded within ${GIVE_UP_MS} ms of the upstream being back (${attempts} attempts)`);
      assert.ok(recoveredAfter <= RECOVERY_MS, `the first uncached pull succeeded ${recoveredAfter} ms after the upstream was back, not within ${RECOVERY_MS} ms`);
      // A real client pulls another image never cached, and the stale one is current again.
      assert.equal((await pullWithSkopeo('hub/library/after', '1')).digest, img.after.manifestDigest);
      assert.equal((await v2('hub/library/cached/manifests/1', { method: 'HEAD' })).headers.get('x-wharf-cache'), 'hit');
    } catch (err) {
      if (wharf) t.diagnostic(`proxy wharf output (tail):\n${wharf.output().slice(-3000)}`);
      if (dist) t.diagnostic(`docker-registry output (tail):\n${dist.output().slice(-1500)}`);
      throw err;
    }
  });
});
