/**
 * Crash safety of blob uploads against real `wharf serve` processes: a process killed (SIGKILL) in the
 * middle of a request body never leaves a visible partial blob, never loses a committed chunk, and the
 * upload can be resumed from the offset the restarted server reports. A client that vanishes mid-chunk
 * (the server staying up) has its partial chunk rolled back.
 *
 * What the code guarantees (src/registry/uploads.ts, src/storage/fs/fs-blob-driver.ts): a chunk is
 * appended in place to `<root>/uploads/<id>` and the upload's offset *is* that file's size. A client
 * disconnect rolls the chunk back (truncate on cancel); a crash cannot run that rollback, so the bytes
 * of the killed chunk that reached the file before the crash are kept, and the restarted server reports
 * them in `Range` — they are a correct prefix of the chunk, so the client resumes from there. A whole
 * blob (monolithic POST) is written under `<root>/.tmp/` and renamed into `blobs/` only once verified.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { ADMIN, adminFetch as fetch, basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';
import { fetchBody, sha256, waitFor } from '../helpers/e2e-utils.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const REPO = 'crash/app';


async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return -1;
  }
}

/** Every file below `dir` (recursively), as paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/**
 * Opens a raw TCP connection and sends a request whose headers announce more body than is sent: only
 * `bodyPart` follows the head. The socket stays open (the server keeps waiting for the rest).
 */
function partialRequest(port: number, method: string, path: string, headers: Record<string, string | number>, bodyPart: Uint8Array): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      const head = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Authorization: ${basicAuth(ADMIN)}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      socket.write(head);
      socket.write(bodyPart, (err) => (err ? reject(err) : resolve(socket)));
    });
    // The server dies or the test destroys the socket: both are expected here.
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

async function startUpload(w: WharfProcess): Promise<{ id: string; location: string }> {
  const res = await fetch(`${w.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  await res.arrayBuffer();
  assert.equal(res.status, 202);
  const id = res.headers.get('docker-upload-uuid');
  const location = res.headers.get('location');
  assert.ok(id && location, 'upload id and Location');
  return { id, location };
}

async function patchChunk(w: WharfProcess, location: string, bytes: Uint8Array, start: number): Promise<Response> {
  const res = await fetch(`${w.url}${location}`, {
    method: 'PATCH',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Range': `${start}-${start + bytes.byteLength - 1}`,
    },
    body: fetchBody(bytes),
  });
  await res.arrayBuffer();
  return res;
}

async function uploadStatus(w: WharfProcess, location: string): Promise<{ status: number; range: string | null }> {
  const res = await fetch(`${w.url}${location}`);
  await res.arrayBuffer();
  return { status: res.status, range: res.headers.get('range') };
}

async function completeUpload(w: WharfProcess, location: string, digest: string, last?: { bytes: Uint8Array; start: number }): Promise<Response> {
  const res = await fetch(`${w.url}${location}?digest=${encodeURIComponent(digest)}`, {
    method: 'PUT',
    headers: last
      ? { 'Content-Type': 'application/octet-stream', 'Content-Range': `${last.start}-${last.start + last.bytes.byteLength - 1}` }
      : {},
    body: last ? fetchBody(last.bytes) : null,
  });
  await res.arrayBuffer();
  return res;
}

async function assertBlobUnknown(w: WharfProcess, digest: string): Promise<void> {
  const head = await fetch(`${w.url}/v2/${REPO}/blobs/${digest}`, { method: 'HEAD' });
  await head.arrayBuffer();
  assert.equal(head.status, 404, 'HEAD of the unfinished blob');
  const get = await fetch(`${w.url}/v2/${REPO}/blobs/${digest}`);
  assert.equal(get.status, 404, 'GET of the unfinished blob');
  const body = (await get.json()) as { errors: Array<{ code: string }> };
  assert.equal(body.errors[0]?.code, 'BLOB_UNKNOWN');
}

async function assertBlobIs(w: WharfProcess, digest: string, bytes: Uint8Array): Promise<void> {
  const res = await fetch(`${w.url}/v2/${REPO}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.byteLength, bytes.byteLength, 'blob length');
  assert.ok(got.equals(bytes), 'blob bytes are exactly the uploaded content');
}

const portOf = (w: WharfProcess): number => Number(new URL(w.url).port);

describe('crash: a crash mid-write never leaves a visible partial blob and the upload can be restarted', () => {
  const dirs: string[] = [];
  const running: WharfProcess[] = [];

  async function freshDataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-crash-'));
    dirs.push(dir);
    return dir;
  }
  async function start(dataDir: string): Promise<WharfProcess> {
    const w = await startWharf({ dataDir });
    running.push(w);
    return w;
  }

  after(async () => {
    for (const w of running) await w.kill();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** Like `it`, but a failure also prints the output of the processes this test started. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      const before = running.length;
      try {
        await fn(t);
      } catch (err) {
        for (const w of running.slice(before)) t.diagnostic(`wharf ${w.url} output (tail):\n${w.output().slice(-3000)}`);
        throw err;
      }
    });
  };

  test('chunked upload: SIGKILL in the middle of a PATCH body keeps the committed chunk, exposes no blob, and the upload resumes', async () => {
    const dataDir = await freshDataDir();
    const content = randomBytes(2 * MiB + 512 * KiB);
    const digest = sha256(content);
    const chunk1 = content.subarray(0, MiB);
    const chunk2 = content.subarray(MiB, 2 * MiB);
    const sent = 256 * KiB;

    const w1 = await start(dataDir);
    const { id, location } = await startUpload(w1);
    const first = await patchChunk(w1, location, chunk1, 0);
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), `0-${MiB - 1}`);

    // The second chunk announces 1 MiB; only its first 256 KiB arrive before the process dies.
    const socket = await partialRequest(
      portOf(w1),
      'PATCH',
      location,
      { 'Content-Type': 'application/octet-stream', 'Content-Length': chunk2.byteLength, 'Content-Range': `${MiB}-${2 * MiB - 1}` },
      chunk2.subarray(0, sent),
    );
    const uploadFile = join(dataDir, 'blobs', 'uploads', id);
    // Kill only once the server has really written the partial bytes (a crash in the middle of a write).
    await waitFor('the partial chunk to reach the upload file', async () => (await fileSize(uploadFile)) === MiB + sent);
    await w1.kill();
    socket.destroy();

    const w2 = await start(dataDir);
    await assertBlobUnknown(w2, digest);

    // The committed chunk survived; the killed chunk's bytes that reached storage before the crash are
    // kept and reported, consistently with what is stored, and they are the right bytes.
    const st = await uploadStatus(w2, location);
    assert.equal(st.status, 204);
    const stored = await readFile(uploadFile);
    assert.equal(st.range, `0-${stored.byteLength - 1}`, 'Range reports exactly the stored bytes');
    assert.equal(stored.byteLength, MiB + sent, 'committed chunk plus the bytes of the killed chunk written before the crash');
    assert.ok(stored.equals(content.subarray(0, stored.byteLength)), 'stored bytes are a prefix of the content');
    const offset = stored.byteLength;

    // A client blindly retrying the killed chunk at its old offset is told where to resume, and nothing changes.
    const retry = await patchChunk(w2, location, chunk2, MiB);
    assert.equal(retry.status, 416);
    assert.equal(retry.headers.get('range'), `0-${offset - 1}`);
    assert.equal((await uploadStatus(w2, location)).range, `0-${offset - 1}`);

    // Resume from the reported offset: one more PATCH, then the final PUT with the last bytes.
    const resumed = await patchChunk(w2, location, content.subarray(offset, 2 * MiB), offset);
    assert.equal(resumed.status, 202);
    assert.equal(resumed.headers.get('range'), `0-${2 * MiB - 1}`);
    const done = await completeUpload(w2, location, digest, { bytes: content.subarray(2 * MiB), start: 2 * MiB });
    assert.equal(done.status, 201);
    assert.equal(done.headers.get('docker-content-digest'), digest);
    await assertBlobIs(w2, digest, content);
    assert.equal(existsSync(uploadFile), false, 'the upload area is gone once the blob is complete');
    await w2.stop();
  });

  test('chunked upload: SIGKILL while a second PATCH has sent only its headers loses nothing committed', async () => {
    const dataDir = await freshDataDir();
    const content = randomBytes(MiB + 300 * KiB);
    const digest = sha256(content);
    const chunk1 = content.subarray(0, MiB);

    const w1 = await start(dataDir);
    const { id, location } = await startUpload(w1);
    assert.equal((await patchChunk(w1, location, chunk1, 0)).status, 202);
    // Headers of the second chunk only, no body: whether or not the server got as far as the handler,
    // the upload must come back with exactly the committed chunk.
    const socket = await partialRequest(
      portOf(w1),
      'PATCH',
      location,
      { 'Content-Type': 'application/octet-stream', 'Content-Length': content.byteLength - MiB, 'Content-Range': `${MiB}-${content.byteLength - 1}` },
      new Uint8Array(0),
    );
    await w1.kill();
    socket.destroy();

    const w2 = await start(dataDir);
    await assertBlobUnknown(w2, digest);
    const st = await uploadStatus(w2, location);
    assert.equal(st.status, 204);
    assert.equal(st.range, `0-${MiB - 1}`, 'exactly the first chunk');
    assert.equal((await stat(join(dataDir, 'blobs', 'uploads', id))).size, MiB);
    const done = await completeUpload(w2, location, digest, { bytes: content.subarray(MiB), start: MiB });
    assert.equal(done.status, 201);
    await assertBlobIs(w2, digest, content);
    await w2.stop();
  });

  test('monolithic upload: SIGKILL mid-body leaves no blob, no partial file under blobs/, and the push can be repeated', async () => {
    const dataDir = await freshDataDir();
    const content = randomBytes(3 * MiB);
    const digest = sha256(content);
    const hex = digest.slice('sha256:'.length);
    const sent = MiB;

    const w1 = await start(dataDir);
    const socket = await partialRequest(
      portOf(w1),
      'POST',
      `/v2/${REPO}/blobs/uploads/?digest=${encodeURIComponent(digest)}`,
      { 'Content-Type': 'application/octet-stream', 'Content-Length': content.byteLength },
      content.subarray(0, sent),
    );
    // Kill once the partial bytes are on disk somewhere in the store (the driver writes them to a
    // temporary file; wherever they are, they must not become the blob).
    const store = join(dataDir, 'blobs');
    await waitFor('the partial blob to be written to storage', async () => {
      for (const f of await listFiles(store)) if ((await fileSize(join(store, f))) === sent) return true;
      return false;
    });
    await w1.kill();
    socket.destroy();

    const w2 = await start(dataDir);
    await assertBlobUnknown(w2, digest);
    const blobFiles = await listFiles(join(dataDir, 'blobs', 'blobs'));
    assert.deepEqual(
      blobFiles.filter((f) => f.includes(hex)),
      [],
      'no file for the digest under <dataDir>/blobs/blobs/',
    );

    const res = await fetch(`${w2.url}/v2/${REPO}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: fetchBody(content),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    await assertBlobIs(w2, digest, content);
    assert.deepEqual(await listFiles(join(dataDir, 'blobs', 'blobs')), [`sha256/${hex.slice(0, 2)}/${hex}`]);
    await w2.stop();
  });

  test('a client that disconnects mid-chunk: the server stays up, the chunk is rolled back, the upload completes afterwards', async () => {
    const dataDir = await freshDataDir();
    const content = randomBytes(2 * MiB);
    const digest = sha256(content);
    const chunk1 = content.subarray(0, MiB);
    const chunk2 = content.subarray(MiB);
    const sent = 200 * KiB;

    const w = await start(dataDir);
    const { id, location } = await startUpload(w);
    assert.equal((await patchChunk(w, location, chunk1, 0)).status, 202);

    const socket = await partialRequest(
      portOf(w),
      'PATCH',
      location,
      { 'Content-Type': 'application/octet-stream', 'Content-Length': chunk2.byteLength, 'Content-Range': `${MiB}-${2 * MiB - 1}` },
      chunk2.subarray(0, sent),
    );
    const uploadFile = join(dataDir, 'blobs', 'uploads', id);
    await waitFor('the partial chunk to reach the upload file', async () => (await fileSize(uploadFile)) === MiB + sent);
    socket.destroy();

    // The abort is noticed asynchronously; the rollback then brings the upload back to the first chunk.
    await waitFor('the aborted chunk to be rolled back', async () => (await uploadStatus(w, location)).range === `0-${MiB - 1}`);
    assert.equal(w.child.exitCode, null, 'the server is still running');
    assert.equal(w.child.signalCode, null);
    const st = await uploadStatus(w, location);
    assert.equal(st.status, 204);
    assert.equal(st.range, `0-${MiB - 1}`);
    assert.equal((await stat(uploadFile)).size, MiB);
    assert.equal((await fetch(`${w.url}/v2/`)).status, 200);

    await assertBlobUnknown(w, digest);
    const again = await patchChunk(w, location, chunk2, MiB);
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('range'), `0-${2 * MiB - 1}`);
    const done = await completeUpload(w, location, digest);
    assert.equal(done.status, 201);
    await assertBlobIs(w, digest, content);
    await w.stop();
  });
});
