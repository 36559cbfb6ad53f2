/**
 * Two `wharf serve` processes behind haproxy, each talking to the bucket through its own fault proxy
 * (test/helpers/fault-proxy.ts) so the test sees which process writes what and can slow or stall it:
 * - SIGKILL of the process receiving a big layer in the middle of a push: the push fails, nothing of it
 *   is visible, the client's retry through haproxy succeeds, and the killed process's leftovers (the
 *   upload row, its S3 multipart upload) are removed by the upload sweep once `upload_timeout` passed;
 * - garbage collection runs once across the processes (passes never overlap, and a deleted image's
 *   blobs are removed by one process, not both);
 * - SIGKILL of the process holding the GC lease in the middle of a pass: the other takes the pass over
 *   as soon as the database saw the process go (its liveness lock), long before the lease runs out;
 * - SIGKILL of the process writing a chunk of an upload: the client's resume on the other process is
 *   accepted as soon as the database saw the process go (its liveness lock), not when its claim expires.
 * One cluster for the file; a killed process is restarted in its slot before the next test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parseDigest } from '../../src/oci/digest.js';
import { blobKey, LOCATION_MARKER_KEY } from '../../src/storage/keys.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { pgRows as rows } from '../helpers/databases.js';
import { fetchBody, rethrowFailures, sha256, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy.js';
import { buildImage, KiB, largeLayer, MiB, type BuiltImage } from '../helpers/oci-layout.js';
import { openMultipartUploads, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, skopeoCopy, SkopeoError } from '../helpers/skopeo.js';
import { basicAuth, type WharfProcess } from '../helpers/wharf-process.js';

/** Longer than any single request of the test takes on a loaded machine (the sweep aborts older writes). */
const UPLOAD_TIMEOUT_S = 30;
/** Far longer than the test waits: a pass is taken over because its holder died, not because its lease ran out. */
const GC_LEASE_S = 600;
/** Longer than a retried push takes, so blobs of the first attempt are not collected under the second. */
const GRACE_S = 30;

describe('two processes behind haproxy: a process killed mid-push, mid-chunk or mid-GC loses nothing', () => {
  let cluster: Cluster | undefined;
  const s3: FaultProxy[] = [];
  let work: string;
  let image: BuiltImage;

  const C = (): Cluster => {
    if (!cluster) throw new Error('the cluster did not start');
    return cluster;
  };
  const P = (i: number): WharfProcess => C().processes[i]!;

  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      // A process an earlier test killed (and did not bring back because it failed) is restarted first.
      for (const [i, p] of C().processes.entries()) if (p.child.exitCode !== null || p.child.signalCode !== null) await C().restart(i);
      try {
        await fn(t);
      } catch (err) {
        for (const [i, p] of (cluster?.processes ?? []).entries()) t.diagnostic(`wharf${i + 1} output (tail):\n${p.output().slice(-3000)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-cluster-kill-'));
    image = await buildImage(join(work, 'src'), { tag: 'v1', seed: 'e2e-cluster-kill', layers: [largeLayer(16 * MiB), { files: [{ path: 'etc/kill', content: 'kill\n' }] }] });
    const endpoint = testS3Options().endpoint!;
    s3.push(await startFaultProxy(endpoint), await startFaultProxy(endpoint));
    cluster = await startCluster({
      processes: 2,
      env: {
        WHARF_LOG_LEVEL: 'info',
        WHARF_REGISTRY_UPLOAD_TIMEOUT: `${UPLOAD_TIMEOUT_S}s`,
        WHARF_GC_INTERVAL: '1s',
        WHARF_GC_LEASE: `${GC_LEASE_S}s`,
        WHARF_GC_GRACE_PERIOD: `${GRACE_S}s`,
        WHARF_GC_TIME_MACHINE_DEFAULT: '0s',
      },
      envOf: (i) => ({ WHARF_STORAGE_S3_ENDPOINT: s3[i]!.url }),
    });
  });

  after(async () => {
    const stopped = await Promise.allSettled([cluster?.stop(), ...s3.map((p) => p.stop())]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures(stopped);
  });

  const isPartUpload = (r: ProxiedRequest) => r.method === 'PUT' && r.query.has('partNumber') && r.query.has('uploadId');
  const isBlobListing = (r: ProxiedRequest) => r.method === 'GET' && r.query.get('list-type') === '2' && (r.query.get('prefix') ?? '').endsWith('/blobs/');

  test('SIGKILL of the process receiving a layer: nothing partial is visible, the retry through haproxy succeeds, the sweep removes the leftovers', async () => {
    const repo = 'e2e/cluster/kill/app';
    const ref = dockerRef(C().host, repo, 'v1');
    // Slow parts, so that the push is still running when the test notices which process receives it.
    const slow = s3.map((p) => p.inject({ match: isPartUpload, fault: { kind: 'stall', ms: 300 } }));
    for (const p of s3) p.clearRequests();
    const push = skopeoCopy(ociRef(join(work, 'src'), 'v1'), ref, { preserveDigests: true, creds: C().admin }).then(
      () => undefined,
      (err: unknown) => err,
    );
    let victim = -1;
    await waitFor('a part of the layer to reach the bucket', () => {
      victim = s3.findIndex((p) => p.requests.filter(isPartUpload).length >= 2);
      return victim >= 0;
    }, 60_000);
    await P(victim).kill();
    const failed = await push;
    assert.ok(failed instanceof SkopeoError, `the push through the killed process fails (${String(failed)})`);
    for (const h of slow) h.remove();

    // Nothing of the interrupted push is visible, through either path.
    const auth = { authorization: basicAuth(C().admin) };
    const layer = image.layers[0]!.digest;
    const survivor = P(1 - victim);
    for (const url of [survivor.url, C().url]) {
      assert.equal((await fetch(`${url}/v2/${repo}/blobs/${layer}`, { method: 'HEAD', headers: auth })).status, 404);
      assert.equal((await fetch(`${url}/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: auth })).status, 404);
    }
    assert.equal(await C().bucket.stat(blobAt(layer)), undefined, 'no layer bytes under the blob key');
    assert.ok((await rows(C().dbUrl, 'select id from uploads')).length >= 1, 'the killed process left its upload behind');
    assert.ok((await openMultipartUploads(C().prefix)) >= 1, 'and an S3 multipart upload');

    // The client retries through haproxy, which no longer routes to the dead process.
    const pushed = await skopeoCopy(ociRef(join(work, 'src'), 'v1'), ref, { preserveDigests: true, creds: C().admin });
    assert.equal(pushed.digest, image.manifestDigest);
    const got = await fetch(`${C().url}/v2/${repo}/manifests/v1`, { headers: { ...auth, accept: image.manifestMediaType } });
    assert.equal(got.status, 200);

    // The survivor's upload sweep removes what the killed process left, once upload_timeout passed.
    await waitFor(
      'the upload sweep to remove the abandoned upload and its multipart upload',
      async () => (await rows(C().dbUrl, 'select id from uploads')).length === 0 && (await openMultipartUploads(C().prefix)) === 0,
      (UPLOAD_TIMEOUT_S * 3 + 10) * 1000,
      500,
    );
    const keys: string[] = [];
    for await (const k of C().bucket.list('')) keys.push(k);
    assert.deepEqual(keys.filter((k) => !k.startsWith('blobs/') && k !== LOCATION_MARKER_KEY), [], 'no upload bytes left in the bucket');
    await C().restart(victim);
  });

  test('garbage collection runs once across the processes: passes never overlap, a deleted image is collected by one of them', async () => {
    const repo = 'e2e/cluster/kill/app';
    const auth = { authorization: basicAuth(C().admin) };
    const removedBefore = await Promise.all(C().processes.map((p) => metric(p, 'wharf_gc_removed_total', 'kind="blob"')));
    const del = await fetch(`${C().url}/v2/${repo}/manifests/${image.manifestDigest}`, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 202);
    const blobs = [image.configDigest, ...image.layers.map((l) => l.digest)];
    await waitFor(
      "garbage collection to remove the image's blobs",
      async () => (await rows(C().dbUrl, `select digest from blobs where digest in (${blobs.map((d) => `'${d}'`).join(',')})`)).length === 0,
      (GRACE_S + 30) * 1000,
      250,
    );
    // A pass deletes the rows first, then the bytes of the blobs whose rows it deleted.
    await waitFor('garbage collection to delete the bytes of the blobs it removed', async () => (await Promise.all(blobs.map((d) => C().bucket.stat(blobAt(d))))).every((s) => s === undefined), 30_000, 250);
    // The counters move when the pass ends, which may be after the bytes are gone.
    let removedAfter: number[] = [];
    const removedSince = () => removedAfter.reduce((a, n, i) => a + n - removedBefore[i]!, 0);
    await waitFor(
      'the pass that removed them to end',
      async () => {
        removedAfter = await Promise.all(C().processes.map((p) => metric(p, 'wharf_gc_removed_total', 'kind="blob"')));
        return removedSince() >= blobs.length;
      },
      30_000,
      250,
    );
    const removed = removedSince();
    assert.equal(removed, blobs.length, `each blob removed once across the processes (per process: ${removedAfter.map((n, i) => n - removedBefore[i]!)})`);

    const passes = C()
      .processes.flatMap((p) => gcPasses(p))
      .sort((a, b) => a.startedAt - b.startedAt);
    assert.ok(passes.length >= 2, `passes ran (${passes.length})`);
    for (let i = 1; i < passes.length; i++) {
      const prev = passes[i - 1]!;
      assert.ok(passes[i]!.startedAt >= prev.startedAt + prev.durationMs, `pass ${i} (${passes[i]!.holder}) started after pass ${i - 1} (${prev.holder}) ended`);
    }
  });

  test('SIGKILL of the process holding the GC lease mid-pass: the other takes the pass over at once, not when the lease runs out', async () => {
    // Every storage listing of the GC sweep stalls: whichever process takes the next pass hangs in it.
    const stalls = s3.map((p) => p.inject({ match: isBlobListing, fault: { kind: 'stall' } }));
    let holder = -1;
    await waitFor(
      'a process to hang in a GC pass',
      async () => {
        const lease = (await rows(C().dbUrl, `select holder, expires_at from worker_leases where name = 'gc'`))[0] as { holder: string | null } | undefined;
        const pid = lease?.holder?.split(':')[1];
        holder = C().processes.findIndex((p) => String(p.child.pid) === pid);
        return holder >= 0 && s3[holder]!.requests.some((r) => isBlobListing(r) && !r.done);
      },
      30_000,
      100,
    );
    const passesBefore = await metric(P(1 - holder), 'wharf_gc_passes_total', 'result="ok"');
    const killedAt = Date.now();
    await P(holder).kill();
    stalls[1 - holder]!.remove();
    await waitFor(
      'the other process to finish a pass',
      async () => (await metric(P(1 - holder), 'wharf_gc_passes_total', 'result="ok"')) > passesBefore,
      30_000,
      250,
    );
    const lease = (await rows(C().dbUrl, `select holder, finished_at from worker_leases where name = 'gc'`))[0] as { finished_at: string | number };
    assert.ok(Number(lease.finished_at) > killedAt, 'a pass finished after the kill');
    const taken = gcPasses(P(1 - holder)).filter((p) => p.startedAt > killedAt);
    assert.ok(taken.length >= 1, 'the survivor ran it');
    assert.ok(taken[0]!.startedAt < killedAt + GC_LEASE_S * 1000, "before the dead holder's lease ran out");
    stalls[holder]!.remove();
    await C().restart(holder);
  });

  test("SIGKILL of the process writing a chunk: the resume on the other process is accepted at once, not refused until the dead writer's claim expires", async () => {
    const repo = 'e2e/cluster/kill/chunk';
    const auth = { authorization: basicAuth(C().admin) };
    const victim = 0;
    const survivor = P(1 - victim);
    // A first chunk above S3's part minimum, written whole on the process about to die.
    const first = randomBytes(6 * 1024 * KiB);
    const started = await fetch(`${P(victim).url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(started.status, 202);
    let loc = new URL(started.headers.get('location')!, P(victim).url);
    const sent = await fetch(`${P(victim).url}${loc.pathname}${loc.search}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` },
      body: fetchBody(first),
    });
    assert.equal(sent.status, 202, await sent.clone().text());
    loc = new URL(sent.headers.get('location')!, P(victim).url);
    const id = loc.pathname.split('/').pop()!;
    const path = `${loc.pathname}${loc.search}`;

    // The second chunk arrives slowly: half of it is sent, then nothing, while the process writes it.
    const second = randomBytes(2 * 1024 * KiB);
    const slow = httpRequest(`${P(victim).url}${path}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${first.length + second.length - 1}`, 'content-length': second.length },
    });
    const slowEnded = new Promise<void>((resolve) => {
      slow.on('response', (res) => res.resume().on('end', resolve).on('error', resolve));
      slow.on('error', () => resolve());
    });
    slow.write(second.subarray(0, 1024 * KiB));
    type Claim = { chunk_writer: string | null; chunk_process: string | null; chunk_expires_at: string | number };
    let claim: Claim | undefined;
    await waitFor(
      'the process to claim the upload for the chunk',
      async () => {
        claim = (await rows(C().dbUrl, `select chunk_writer, chunk_process, chunk_expires_at from uploads where id = '${id}'`))[0] as Claim | undefined;
        return Boolean(claim?.chunk_writer);
      },
      30_000,
      50,
    );
    assert.ok(claim?.chunk_process, 'the claim names its process');
    const lockHeld = async () =>
      (await rows(C().dbUrl, `select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 2 and objid = hashtext('${claim!.chunk_process}')::oid`)).length > 0;
    assert.equal(await lockHeld(), true, 'the writing process holds its liveness lock');

    await P(victim).kill();
    await slowEnded;
    // The database sees the process gone when its connections close, which its death does.
    await waitFor("the dead process's liveness lock to go", async () => !(await lockHeld()), 30_000, 20);

    // The client asks the other process where the upload stands and sends the rest from there.
    const status = await fetch(`${survivor.url}${path}`, { headers: auth });
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${first.length - 1}`, 'the bytes of the first chunk, none of the interrupted one');
    const resumed = await fetch(`${survivor.url}${path}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${first.length + second.length - 1}` },
      body: fetchBody(second),
    });
    const answeredAt = Date.now();
    assert.equal(resumed.status, 202, `the resume was refused: ${await resumed.clone().text()}`);
    // Without the liveness lock it would have waited for this: the dead writer's claim was still current.
    assert.ok(answeredAt < Number(claim!.chunk_expires_at), 'accepted while the dead claim had not expired');

    const whole = Buffer.concat([first, second]);
    const sep = loc.search ? '&' : '?';
    const done = await fetch(`${survivor.url}${path}${sep}digest=${sha256(whole)}`, { method: 'PUT', headers: auth });
    assert.equal(done.status, 201, await done.clone().text());
    const got = await fetch(`${C().url}/v2/${repo}/blobs/${sha256(whole)}`, { headers: auth });
    assert.equal(got.status, 200);
    assert.equal(sha256(new Uint8Array(await got.arrayBuffer())), sha256(whole));
    await C().restart(victim);
  });
});

/** The key of a blob's bytes in the bucket. */
function blobAt(digest: string): string {
  const parsed = parseDigest(digest);
  assert.ok(parsed.ok);
  return blobKey(parsed.digest);
}

/** A sample of a counter on one process (summed over the series whose labels contain `labels`). */
async function metric(p: WharfProcess, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) if (m[1]!.includes(labels)) sum += Number(m[2]);
  return sum;
}

/** The GC passes a process logged (JSON lines at info level). */
function gcPasses(p: WharfProcess): Array<{ holder: string; startedAt: number; durationMs: number }> {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.includes('garbage-collection pass finished'))
    .map((l) => JSON.parse(l) as { holder: string; startedAt: number; durationMs: number });
}
