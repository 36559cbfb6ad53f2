/**
 * Pushes (monolithic, chunked and mounted blobs; manifests by tag), tag deletions and garbage-collection
 * passes running at once, through the HTTP app with the filesystem driver, with no grace period and no
 * time-machine window so that GC removes content as early as it may. Afterwards every live tag pulls
 * completely with the right bytes, and two more passes leave nothing collectable and no stray bytes.
 * On PostgreSQL two GC passes run concurrently throughout. Storage deletes are slowed down, which widens
 * the window between GC deleting a blob's row and its bytes, where a re-upload of the digest lands.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BlobDriver } from '../storage/blob-driver.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { buildTestApp, type TestApp } from '../../test/helpers/app.js';
import { DIALECTS } from '../../test/helpers/databases.js';
import { assertLiveContentReadable, random, slowDeletes, unreferencedContent } from '../../test/helpers/gc-invariants.js';
import { errorCode, imageManifest } from '../../test/helpers/inject-client.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPOS = ['conc/a', 'conc/b', 'conc/c'];
const TAGS = ['t1', 't2', 't3', 't4'];
/** Layers shared by many images, so that pushes and GC meet on the same digests. */
const LAYERS = Array.from({ length: 6 }, (_, i) => Buffer.from(`shared layer ${i} `.repeat(50 + i)));
const PUSHERS = 4;
const PUSHES_EACH = 25;

for (const dialect of DIALECTS) {
  describe(`garbage collection under concurrent pushes and deletes (${dialect})`, () => {
    it('loses nothing referenced and leaves nothing unreferenced', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'wharf-gc-conc-'));
      const storage = new FsBlobDriver(dir, { fsync: false });
      const t: TestApp = await buildTestApp(dialect, {
        storage: slowDeletes(storage),
        config: { 'auth.enabled': false, 'gc.grace_period': 0, 'gc.time_machine_default': '0s', 'gc.batch_size': 3 },
      });
      try {
        const inject = (method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE', url: string, payload?: Buffer) =>
          t.app.inject({ method, url, ...(payload ? { payload, headers: { 'content-type': 'application/octet-stream' } } : {}) });
        const unexpected: string[] = [];
        const check = (what: string, status: number, ok: number[], body: string) => {
          if (!ok.includes(status)) unexpected.push(`${what}: ${status} ${body.slice(0, 300)}`);
          return ok.includes(status);
        };

        /** One blob, by one of three routes; false if the push must start over. */
        const uploadBlob = async (repo: string, data: Buffer, how: number): Promise<boolean> => {
          const digest = sha256(data);
          if (how === 0) {
            const res = await inject('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, data);
            return check('monolithic upload', res.statusCode, [201], res.body);
          }
          const from = REPOS.find((r) => r !== repo)!;
          const start = await inject('POST', `/v2/${repo}/blobs/uploads/${how === 2 ? `?mount=${digest}&from=${from}` : ''}`);
          if (start.statusCode === 201) return true;
          if (!check('start upload', start.statusCode, [202], start.body)) return false;
          const location = String(start.headers.location);
          const half = Math.floor(data.length / 2);
          const p = await inject('PATCH', location, data.subarray(0, half));
          if (!check('patch', p.statusCode, [202], p.body)) return false;
          const done = await inject('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, data.subarray(half));
          return check('complete upload', done.statusCode, [201], done.body);
        };

        let retried = 0;
        let pushed = 0;
        const pusher = async (id: number) => {
          const next = random(id + 1);
          for (let i = 0; i < PUSHES_EACH; i++) {
            const repo = REPOS[next(REPOS.length)]!;
            const tag = TAGS[next(TAGS.length)]!;
            if (next(4) === 0) {
              const del = await inject('DELETE', `/v2/${repo}/manifests/${tag}`);
              check('delete tag', del.statusCode, [202, 404], del.body);
              continue;
            }
            const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', pusher: id, n: i }));
            const layers = [LAYERS[next(LAYERS.length)]!, LAYERS[next(LAYERS.length)]!].filter((l, k, all) => all.indexOf(l) === k);
            const manifest = Buffer.from(
              JSON.stringify(imageManifest({ digest: sha256(config), size: config.length }, layers.map((l) => ({ digest: sha256(l), size: l.length })))),
            );
            // With no grace period GC may unlink a blob between its upload and the manifest: start over.
            for (let attempt = 0; attempt < 20; attempt++) {
              let ok = true;
              for (const blob of [config, ...layers]) ok = ok && (await uploadBlob(repo, blob, next(3)));
              if (!ok) break;
              const put = await t.app.inject({ method: 'PUT', url: `/v2/${repo}/manifests/${tag}`, payload: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
              if (put.statusCode === 201) {
                pushed++;
                break;
              }
              if (put.statusCode === 400 && errorCode(put) === 'MANIFEST_BLOB_UNKNOWN') {
                retried++;
                continue;
              }
              check('put manifest', put.statusCode, [201], put.body);
              break;
            }
          }
        };

        let running = true;
        let passes = 0;
        const collector = async () => {
          while (running) {
            await t.registry.gc.run();
            passes++;
            // Passes back to back would leave a push no moment between its blobs and its manifest.
            await new Promise((r) => setTimeout(r, 5 + (passes % 23)));
          }
        };
        const collectors = Array.from({ length: dialect === 'postgres' ? 2 : 1 }, collector);
        await Promise.all(Array.from({ length: PUSHERS }, (_, i) => pusher(i)));
        running = false;
        await Promise.all(collectors);

        process.stderr.write(`  ${dialect}: ${passes} GC passes, ${pushed} images pushed, ${retried} manifest pushes retried\n`);
        assert.deepEqual(unexpected, []);
        assert.ok(passes >= 10, `only ${passes} GC passes ran alongside the pushes`);
        assert.ok(pushed >= PUSHERS * PUSHES_EACH * 0.3, `only ${pushed} pushes went through`);
        const live = await assertLiveContentReadable(t.app, t.db);
        assert.ok(live > 0, 'some tags are live at the end');
        await t.registry.gc.run();
        await t.registry.gc.run();
        assert.deepEqual(await unreferencedContent(t.db, storage), { manifests: [], links: 0, blobs: [], strayBytes: [], missingBytes: [] });
        assert.equal(await assertLiveContentReadable(t.app, t.db), live);
        const guards = await t.db.db.selectFrom('blob_guards').selectAll().execute();
        assert.deepEqual(guards, [], 'no guard is left behind');
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
