/**
 * Fills across processes, two ClusterFills over one database (both dialects) and one storage. The hop
 * between them calls the owner's FillPeers in this process (the HTTP route and the peer client are
 * proven end to end in test/e2e/proxy-scale-out.test.ts): it lets a test cut an owner off at a chosen
 * byte, as its death would. Upstream bodies are streams the test writes, so every ordering is explicit.
 * On PostgreSQL, two processes each holding its liveness lock: a follower that nobody reads from notices
 * its owner's death when it next looks at the lease, not when the lease expires.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, pipeline, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openProcessDatabase, openTestDatabase } from '../../../test/helpers/databases.js';
import { BlobFillLeaseStore } from '../../db/blob-fill-lease-store.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { ServerSettingsStore } from '../../db/server-settings-store.js';
import { digestOf, type Digest } from '../../oci/digest.js';
import { blobKey } from '../../storage/keys.js';
import { MemoryBlobDriver } from '../../storage/memory/memory-blob-driver.js';
import type { BlobBody } from '../blobs.js';
import { BlobFills, type FillSource } from './blob-fills.js';
import { ClusterFills } from './cluster-fills.js';
import { FillPeers } from './fill-peers.js';
import type { PeerFills } from './followed-fill.js';
import { PEER_SECRET_SETTING, PeerSecret } from './peer-secret.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

/** The processes' endpoints by URL; a cut-off one refuses connections and breaks the streams it was sending. */
class Hop implements PeerFills {
  readonly owners = new Map<string, FillPeers>();
  private readonly dead = new Set<string>();
  private readonly streams = new Map<string, Set<Readable>>();
  /** Every request sent, as `<url> <offset>`. */
  readonly requests: string[] = [];

  async get(url: string, digest: string, secret: string, offset: number): Promise<{ size: number | undefined; body: Readable }> {
    this.requests.push(`${url} ${offset}`);
    const served = await this.open(url, digest, secret, offset);
    // A socket: cutting it breaks the reader's side at once, whatever the sender is waiting for.
    const source = toReadable(served.body!);
    const body = new PassThrough();
    pipeline(source, body, () => {});
    const set = this.streams.get(url) ?? new Set();
    this.streams.set(url, set);
    set.add(body);
    body.once('close', () => set.delete(body));
    return { size: served.size, body };
  }

  /** The process at `url` dies: connections are refused, and the bodies it was sending break. */
  cut(url: string): void {
    this.dead.add(url);
    for (const s of this.streams.get(url) ?? []) s.destroy(new Error('connection reset'));
  }

  private async open(url: string, digest: string, secret: string, offset: number) {
    const peers = this.owners.get(url);
    if (!peers || this.dead.has(url)) throw new Error(`connect ECONNREFUSED ${url}`);
    if (!(await peers.authorize(secret))) throw new Error('401');
    const served = await peers.open(digest as Digest, offset, false);
    if (!served) throw new Error('404');
    return served;
  }
}

function toReadable(body: BlobBody): Readable {
  if (body.kind === 'stream') return body.stream;
  const { reader, offset, length } = body;
  return Readable.from(
    (async function* () {
      try {
        for (let pos = offset; pos < offset + length; ) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, offset + length - pos));
          const n = await reader.read(buf, pos, buf.byteLength);
          if (n === 0) throw new Error('short read');
          pos += n;
          yield buf.subarray(0, n);
        }
      } finally {
        await reader.close();
      }
    })(),
    { objectMode: false },
  );
}

/** An upstream body the test writes, and how often it was asked for. */
function upstream(size: number) {
  const bodies: PassThrough[] = [];
  const start = async (): Promise<FillSource> => {
    const body = new PassThrough();
    bodies.push(body);
    return { stream: body, size };
  };
  return { start, bodies };
}

/** Reads a stream to its end: its bytes' digest and length, or its error. */
async function drain(stream: Readable, onChunk?: (n: number) => void): Promise<{ digest?: string; bytes: number; error?: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      onChunk?.(bytes);
    }
    return { digest: `sha256:${hash.digest('hex')}`, bytes };
  } catch (err) {
    return { bytes, error: (err as Error).message };
  }
}

function until(probe: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const tick = () => (probe() ? resolve() : setImmediate(tick));
    tick();
  });
}

for (const dialect of DIALECTS) {
  describe(`ClusterFills (${dialect})`, () => {
    let h: DatabaseHandle;
    let spool: string;
    let storage: MemoryBlobDriver;
    let hop: Hop;
    let a: ClusterFills;
    let b: ClusterFills;
    let bEvents: { followed: number; takenOver: number };

    before(async () => {
      h = await openTestDatabase(dialect);
      spool = await mkdtemp(join(tmpdir(), 'wharf-cluster-fills-'));
      storage = new MemoryBlobDriver();
      hop = new Hop();
      const settings = new ServerSettingsStore(h.db);
      const make = (name: string) => {
        const local = new BlobFills({ storage, spoolDir: join(spool, name) });
        const secret = new PeerSecret((candidate) => settings.claim(PEER_SECRET_SETTING, candidate, Date.now()));
        const url = `http://${name}.test:5000`;
        hop.owners.set(url, new FillPeers({ fills: local, storage, secret }));
        return new ClusterFills({ local, leases: new BlobFillLeaseStore(h.db), storage, peers: hop, secret, self: { id: name, url: () => url }, leaseMs: 60_000 });
      };
      a = make('a');
      b = make('b');
      bEvents = { followed: 0, takenOver: 0 };
      b.observe({ followed: () => bEvents.followed++, takenOver: () => bEvents.takenOver++ });
    });
    after(async () => {
      await h.close();
      await rm(spool, { recursive: true, force: true });
    });

    it('a starting process sweeps the leases of fills whose owners died, not the live ones', async () => {
      const leases = new BlobFillLeaseStore(h.db);
      const now = Date.now();
      await leases.take('sha256:dead-owner', { owner: 'dead', ownerUrl: 'http://dead.test:5000' }, now - 3 * 60_000, 60_000);
      await leases.take('sha256:live-owner', { owner: 'live', ownerUrl: 'http://live.test:5000' }, now, 60_000);
      assert.equal(await a.sweepSpool(), 1);
      assert.equal(await leases.find('sha256:dead-owner'), undefined);
      assert.equal((await leases.find('sha256:live-owner'))?.owner, 'live');
      await leases.release('sha256:live-owner', 'live');
    });

    it('one upstream fetch: the other process streams the fill while it runs, and links nothing before the commit', async () => {
      const blob = randomBytes(4 * MiB);
      const digest = digestOf(blob) as Digest;
      const upA = upstream(blob.byteLength);
      const upB = upstream(blob.byteLength);
      const ha = await a.join(digest, upA.start);
      assert.equal(ha.joined, false);
      const requestsBefore = hop.requests.length;
      const hb = await b.join(digest, upB.start);
      assert.equal(hb.joined, true);
      assert.equal(hb.size, blob.byteLength, "the size, from the head of the owner's answer");
      assert.equal(bEvents.followed, 1);
      assert.deepEqual(hop.requests.slice(requestsBefore), ['http://a.test:5000 0'], 'joining sent one GET to the owner');
      let bGot = 0;
      const reading = drain(hb.open(), (n) => (bGot = n));
      const body = upA.bodies[0]!;
      body.write(blob.subarray(0, 2 * MiB));
      await until(() => bGot > 0);
      assert.ok(!(await storage.stat(blobKey(digest))), 'B had bytes before the blob was committed');
      body.end(blob.subarray(2 * MiB));
      const got = await reading;
      assert.deepEqual(got, { digest, bytes: blob.byteLength });
      assert.equal(upB.bodies.length, 0, 'B never went upstream');
      assert.deepEqual(hop.requests.slice(requestsBefore), ['http://a.test:5000 0'], "the client's read took the answer to that GET");
      assert.deepEqual(await hb.done, { size: blob.byteLength });
      await ha.done;
      await until(() => true);
      assert.equal(await new BlobFillLeaseStore(h.db).find(digest), undefined, 'the owner released the lease');
    });

    it('the owner dies mid-fill: the follower takes over and its client goes on from the byte it had, once', async () => {
      const blob = randomBytes(4 * MiB);
      const digest = digestOf(blob) as Digest;
      const upA = upstream(blob.byteLength);
      const upB = upstream(blob.byteLength);
      await a.join(digest, upA.start);
      const hb = await b.join(digest, upB.start);
      let bGot = 0;
      const reading = drain(hb.open(), (n) => (bGot = n));
      upA.bodies[0]!.write(blob.subarray(0, 2 * MiB + 12345));
      // The follower holds back its last chunk until the end: it has passed on a prefix of what it received.
      await until(() => bGot >= MiB);
      hop.cut('http://a.test:5000');
      await until(() => upB.bodies.length === 1);
      assert.equal(bEvents.takenOver, 1);
      upB.bodies[0]!.end(blob);
      assert.deepEqual(await reading, { digest, bytes: blob.byteLength });
      assert.deepEqual(await hb.done, { size: blob.byteLength });
      upA.bodies[0]!.destroy(new Error('the dead owner'));
    });

    it('a follower never completes a response on bytes that failed verification, even when its own fill then succeeds', async () => {
      const blob = randomBytes(2 * MiB);
      const digest = digestOf(blob) as Digest;
      const upA = upstream(blob.byteLength);
      const upB = upstream(blob.byteLength);
      const hop2 = new Hop();
      for (const [url, peers] of hop.owners) hop2.owners.set(url, peers);
      // A new pair of processes on the same database and storage (A was cut off above).
      const settings = new ServerSettingsStore(h.db);
      const make = (name: string) => {
        const local = new BlobFills({ storage, spoolDir: join(spool, name) });
        const secret = new PeerSecret((candidate) => settings.claim(PEER_SECRET_SETTING, candidate, Date.now()));
        const url = `http://${name}.test:5000`;
        hop2.owners.set(url, new FillPeers({ fills: local, storage, secret }));
        return new ClusterFills({ local, leases: new BlobFillLeaseStore(h.db), storage, peers: hop2, secret, self: { id: name, url: () => url }, leaseMs: 60_000 });
      };
      const c = make('c');
      const d = make('d');
      const hc = await c.join(digest, upA.start);
      const hd = await d.join(digest, upB.start);
      assert.equal(hd.joined, true);
      let dGot = 0;
      const reading = drain(hd.open(), (n) => (dGot = n));
      const corrupt = Buffer.from(blob);
      corrupt[0] = corrupt[0]! ^ 0xff;
      upA.bodies[0]!.write(corrupt.subarray(0, MiB));
      await until(() => dGot > 0);
      upA.bodies[0]!.end(corrupt.subarray(MiB));
      await assert.rejects(hc.done, /digest/i);
      // D takes the failed fill over and fetches the right bytes; its client had some of the wrong ones.
      await until(() => upB.bodies.length === 1);
      upB.bodies[0]!.end(blob);
      const got = await reading;
      assert.ok(got.error !== undefined, `the client's response ended cleanly with ${got.bytes} bytes`);
      assert.deepEqual(await hd.done, { size: blob.byteLength }, "D's own fill committed the right blob");
      const stored = createHash('sha256');
      for await (const chunk of await storage.reader(blobKey(digest))) stored.update(chunk);
      assert.equal(`sha256:${stored.digest('hex')}`, digest);
    });
  });
}

describe('ClusterFills (postgres, two processes): a follower without readers replaces a dead owner at once', () => {
  let admin: DatabaseHandle & { url: string };
  let spool: string;
  before(async () => {
    admin = await openTestDatabase('postgres');
    spool = await mkdtemp(join(tmpdir(), 'wharf-cluster-fills-'));
  });
  after(async () => {
    await admin.close();
    await rm(spool, { recursive: true, force: true });
  });

  /** B's lease store, counting the times B looks at a lease (the watcher does, while nobody reads). */
  class CountingLeases extends BlobFillLeaseStore {
    looks = 0;
    override async find(digest: string) {
      this.looks++;
      return super.find(digest);
    }
    override async look(digest: string) {
      this.looks++;
      return super.look(digest);
    }
  }

  it("takes the fill over as soon as the owner's process is gone, long before its lease expires", async () => {
    const pa = await openProcessDatabase(admin.url, 'process-a');
    const pb = await openProcessDatabase(admin.url, 'process-b');
    try {
      const storage = new MemoryBlobDriver();
      const hop = new Hop();
      const settings = new ServerSettingsStore(admin.db);
      // The clock stands still: no lease ever expires; the watcher looks every 50 ms (a third of the lease).
      const clock = Date.now();
      const make = (name: string, p: DatabaseHandle, leases: BlobFillLeaseStore) => {
        const local = new BlobFills({ storage, spoolDir: join(spool, name) });
        const secret = new PeerSecret((candidate) => settings.claim(PEER_SECRET_SETTING, candidate, Date.now()));
        const url = `http://${name}.test:5000`;
        hop.owners.set(url, new FillPeers({ fills: local, storage, secret }));
        return new ClusterFills({ local, leases, storage, peers: hop, secret, self: { id: name, url: () => url }, leaseMs: 150, now: () => clock });
      };
      const a = make('a', pa, new BlobFillLeaseStore(pa.db, pa.dialect, pa.processId));
      const bLeases = new CountingLeases(pb.db, pb.dialect, pb.processId);
      const b = make('b', pb, bLeases);
      let takenOver = 0;
      b.observe({ takenOver: () => takenOver++ });

      const blob = randomBytes(MiB);
      const digest = digestOf(blob) as Digest;
      const upA = upstream(blob.byteLength);
      const upB = upstream(blob.byteLength);
      await a.join(digest, upA.start);
      const hb = await b.join(digest, upB.start);
      assert.equal(hb.joined, true, 'B follows A');
      upA.bodies[0]!.write(blob.subarray(0, MiB / 2));
      // B keeps looking at a lease that stays current: A lives.
      await until(() => bLeases.looks >= 2);
      assert.equal(takenOver, 0);

      // A dies: its liveness connection closes and its endpoint goes; nobody reads from B.
      await pa.close();
      hop.cut('http://a.test:5000');
      const looked = bLeases.looks;
      await until(() => takenOver > 0 || bLeases.looks >= looked + 3);
      assert.equal(takenOver, 1, 'B took the fill over at its next look at the lease');
      assert.equal(upB.bodies.length, 1, 'B fetches the blob itself');
      upB.bodies[0]!.end(blob);
      assert.deepEqual(await hb.done, { size: blob.byteLength });
      const lease = await new BlobFillLeaseStore(admin.db).find(digest);
      assert.ok(lease === undefined || lease.owner === 'b', 'A holds the lease no more');
      upA.bodies[0]!.destroy(new Error('the dead owner'));
      await b.close();
      await a.close();
    } finally {
      await pa.close();
      await pb.close();
    }
  });
});
