/**
 * Invariants of garbage collection, checked independently of the GC's own SQL:
 * - `assertLiveContentReadable`: every live tag's manifest, and everything it references (an index's
 *   children, config and layers), can be pulled through `/v2` with the right bytes;
 * - `unreferencedContent`: what a correct collector would still remove, computed in memory from the
 *   tables (reachability from retained tag rows and recent pushes), plus bytes in storage without a row.
 * And what the concurrency tests share: a repeatable random generator and a driver with slow deletes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { DatabaseHandle } from '../../src/db/connect.js';
import type { BlobDriver } from '../../src/storage/blob-driver.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Descriptor {
  digest: string;
  mediaType?: string;
}

/** Pulls every live, visible tag of every repository with everything it references; returns how many tags. */
export async function assertLiveContentReadable(app: FastifyInstance, db: DatabaseHandle, headers: Record<string, string> = {}): Promise<number> {
  const now = Date.now();
  const live = await db.db
    .selectFrom('tags as t')
    .innerJoin('repositories as r', 'r.id', 't.repository_id')
    .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
    .select(['n.name as ns', 'r.name as repo', 't.name as tag', 't.expires_at'])
    .where('t.lifetime_end', 'is', null)
    .where('t.hidden', '=', 0)
    .execute();
  let count = 0;
  for (const t of live) {
    if (t.expires_at !== null && t.expires_at <= now) continue;
    const name = `${t.ns}/${t.repo}`;
    await pull(app, name, t.tag, headers);
    count++;
  }
  return count;
}

async function pull(app: FastifyInstance, name: string, ref: string, headers: Record<string, string>): Promise<void> {
  const res = await app.inject({ url: `/v2/${name}/manifests/${ref}`, headers: { accept: '*/*', ...headers } });
  assert.equal(res.statusCode, 200, `manifest ${name}:${ref}: ${res.body}`);
  const m = JSON.parse(res.body) as { config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] };
  for (const child of m.manifests ?? []) await pull(app, name, child.digest, headers);
  for (const blob of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
    const b = await app.inject({ url: `/v2/${name}/blobs/${blob.digest}`, headers });
    assert.equal(b.statusCode, 200, `blob ${blob.digest} of ${name}:${ref}: ${b.body}`);
    assert.equal(sha256(b.rawPayload), blob.digest, `bytes of ${blob.digest} in ${name}`);
  }
}

export interface Leftovers {
  manifests: string[];
  links: number;
  blobs: string[];
  /** Blob keys in storage without a blob row. */
  strayBytes: string[];
  /** Blob rows whose bytes are missing (placeholders of proxy caches aside, there should be none). */
  missingBytes: string[];
}

/**
 * What is still collectable at `now` with `graceMs` and `defaultWindowMs` (namespaces' own windows
 * honoured), computed in memory.
 */
export async function unreferencedContent(db: DatabaseHandle, storage: BlobDriver, o: { now?: number; graceMs?: number; defaultWindowMs?: number } = {}): Promise<Leftovers> {
  const now = o.now ?? Date.now();
  const grace = now - (o.graceMs ?? 0);
  const defaultWindow = o.defaultWindowMs ?? 0;
  const manifests = await db.db.selectFrom('manifests').select(['id', 'repository_id', 'digest', 'subject_digest', 'created_at', 'pushed_at']).execute();
  const tags = await db.db
    .selectFrom('tags as t')
    .innerJoin('repositories as r', 'r.id', 't.repository_id')
    .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
    .select(['t.manifest_id', 't.lifetime_end', 't.expires_at', 't.hidden', 'n.time_machine_s'])
    .execute();
  const children = await db.db.selectFrom('manifest_children').selectAll().execute();
  const mblobs = await db.db.selectFrom('manifest_blobs').selectAll().execute();
  const links = await db.db.selectFrom('repository_blobs').selectAll().execute();
  const blobs = await db.db.selectFrom('blobs').select(['id', 'digest', 'created_at']).execute();

  const kept = new Set<number>();
  const queue: number[] = [];
  const keep = (id: number) => {
    if (!kept.has(id)) {
      kept.add(id);
      queue.push(id);
    }
  };
  for (const m of manifests) if (Number(m.pushed_at ?? m.created_at) >= grace) keep(Number(m.id));
  for (const t of tags) {
    const end = t.lifetime_end ?? (t.expires_at !== null && t.expires_at <= now ? t.expires_at : null);
    const window = t.time_machine_s === null ? defaultWindow : Number(t.time_machine_s) * 1000;
    if (end === null || (t.hidden === 0 && Number(end) >= now - window)) keep(Number(t.manifest_id));
  }
  const byId = new Map(manifests.map((m) => [Number(m.id), m]));
  while (queue.length) {
    const id = queue.pop()!;
    for (const c of children) if (Number(c.manifest_id) === id) keep(Number(c.child_id));
    const p = byId.get(id)!;
    for (const r of manifests) if (r.repository_id === p.repository_id && r.subject_digest === p.digest) keep(Number(r.id));
  }
  const keptBlobIds = new Set(mblobs.filter((mb) => kept.has(Number(mb.manifest_id))).map((mb) => Number(mb.blob_id)));
  const usedIn = new Set(mblobs.filter((mb) => kept.has(Number(mb.manifest_id))).map((mb) => `${byId.get(Number(mb.manifest_id))!.repository_id}:${mb.blob_id}`));
  const keptLinks = links.filter((l) => Number(l.created_at) >= grace || usedIn.has(`${l.repository_id}:${l.blob_id}`));
  const linkedBlobIds = new Set(keptLinks.map((l) => Number(l.blob_id)));
  const garbageBlobs = blobs.filter((b) => Number(b.created_at) < grace && !keptBlobIds.has(Number(b.id)) && !linkedBlobIds.has(Number(b.id)));

  const digests = new Set(blobs.map((b) => b.digest));
  const strayBytes: string[] = [];
  const present = new Set<string>();
  for await (const key of storage.list('blobs/')) {
    const parts = key.split('/');
    const digest = `${parts[1]}:${parts[3]}`;
    present.add(digest);
    if (!digests.has(digest)) strayBytes.push(digest);
  }
  const linkedAnywhere = new Set(links.map((l) => Number(l.blob_id)));
  return {
    manifests: manifests.filter((m) => !kept.has(Number(m.id))).map((m) => m.digest),
    links: links.length - keptLinks.length,
    blobs: garbageBlobs.map((b) => b.digest),
    strayBytes,
    missingBytes: blobs.filter((b) => linkedAnywhere.has(Number(b.id)) && !present.has(b.digest)).map((b) => b.digest),
  };
}

/** A small deterministic generator, so that a failing run can be repeated. */
export function random(seed: number): (n: number) => number {
  let s = seed;
  return (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return (s >>> 16) % n;
  };
}

/** The driver with deletes of blobs that take a while, as on object storage. */
export function slowDeletes(driver: BlobDriver): BlobDriver {
  return new Proxy(driver, {
    get(target, prop, receiver) {
      if (prop === 'delete') {
        return async (key: string) => {
          await new Promise((r) => setTimeout(r, key.startsWith('blobs/') ? 15 : 0));
          return target.delete(key);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
