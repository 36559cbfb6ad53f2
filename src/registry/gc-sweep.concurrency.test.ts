/**
 * The storage sweep racing pushes of the same digests, through the HTTP app with the filesystem driver,
 * with no grace period, no time-machine window and a sweep of a few keys per pass, so that bytes without
 * a row are swept as early as they may be. Alongside the pushes (monolithic and chunked uploads of a
 * few shared layers, manifests by tag, tag deletions) a "crashing writer" keeps committing those layers'
 * bytes straight into storage without recording them, which is what a writer that died before its row
 * leaves behind; storage deletes are slowed down, which widens the window between the sweep's claim of
 * a digest and the deletion of its bytes. An auditor checks all along that no blob row ever lacks its
 * bytes; afterwards every live tag pulls completely, and full passes leave nothing collectable and no
 * stray bytes. On PostgreSQL two passes run concurrently throughout.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Digest } from '../oci/digest.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { blobKey } from '../storage/keys.js';
import { buildTestApp, type TestApp } from '../../test/helpers/app.js';
import { DIALECTS } from '../../test/helpers/databases.js';
import { assertLiveContentReadable, random, slowDeletes, unreferencedContent } from '../../test/helpers/gc-invariants.js';
import { errorCode, imageManifest } from '../../test/helpers/inject-client.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPOS = ['sweep/a', 'sweep/b'];
const TAGS = ['t1', 't2', 't3'];
const LAYERS = Array.from({ length: 12 }, (_, i) => Buffer.from(`swept layer ${i} `.repeat(40 + i)));
const PUSHERS = 4;
const PUSHES_EACH = 20;

for (const dialect of DIALECTS) {
  describe(`storage sweep under concurrent pushes of the same digests (${dialect})`, () => {
    it('never leaves a blob row without its bytes, and leaves no stray bytes', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'wharf-sweep-conc-'));
      const fs = new FsBlobDriver(dir, { fsync: false });
      const t: TestApp = await buildTestApp(dialect, {
        storage: slowDeletes(fs),
        config: { 'auth.enabled': false, 'gc.grace_period': 0, 'gc.time_machine_default': '0s', 'gc.batch_size': 3, 'gc.sweep_batch': 16 },
      });
      try {
        const inject = (method: 'PUT' | 'PATCH' | 'POST' | 'DELETE', url: string, payload?: Buffer) =>
          t.app.inject({ method, url, ...(payload ? { payload, headers: { 'content-type': 'application/octet-stream' } } : {}) });
        const unexpected: string[] = [];
        const check = (what: string, status: number, ok: number[], body: string) => {
          if (!ok.includes(status)) unexpected.push(`${what}: ${status} ${body.slice(0, 300)}`);
          return ok.includes(status);
        };

        const uploadBlob = async (repo: string, data: Buffer, chunked: boolean): Promise<boolean> => {
          const digest = sha256(data);
          if (!chunked) {
            const res = await inject('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, data);
            return check('monolithic upload', res.statusCode, [201], res.body);
          }
          const start = await inject('POST', `/v2/${repo}/blobs/uploads/`);
          if (!check('start upload', start.statusCode, [202], start.body)) return false;
          const location = String(start.headers.location);
          const half = Math.floor(data.length / 2);
          const p = await inject('PATCH', location, data.subarray(0, half));
          if (!check('patch', p.statusCode, [202], p.body)) return false;
          const done = await inject('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, data.subarray(half));
          return check('complete upload', done.statusCode, [201], done.body);
        };

        let pushed = 0;
        const pusher = async (id: number) => {
          const next = random(id + 7);
          for (let i = 0; i < PUSHES_EACH; i++) {
            const repo = REPOS[next(REPOS.length)]!;
            const tag = TAGS[next(TAGS.length)]!;
            if (next(3) === 0) {
              const del = await inject('DELETE', `/v2/${repo}/manifests/${tag}`);
              check('delete tag', del.statusCode, [202, 404], del.body);
              continue;
            }
            const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', pusher: id, n: i }));
            const layer = LAYERS[next(LAYERS.length)]!;
            const manifest = Buffer.from(JSON.stringify(imageManifest({ digest: sha256(config), size: config.length }, [{ digest: sha256(layer), size: layer.length }])));
            for (let attempt = 0; attempt < 20; attempt++) {
              let ok = true;
              for (const blob of [config, layer]) ok = ok && (await uploadBlob(repo, blob, next(2) === 1));
              if (!ok) break;
              const put = await t.app.inject({ method: 'PUT', url: `/v2/${repo}/manifests/${tag}`, payload: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
              if (put.statusCode === 201) {
                pushed++;
                break;
              }
              // With no grace period GC may collect a blob between its upload and the manifest: start over.
              if (put.statusCode === 400 && errorCode(put) === 'MANIFEST_BLOB_UNKNOWN') continue;
              check('put manifest', put.statusCode, [201], put.body);
              break;
            }
          }
        };

        let running = true;
        let planted = 0;
        /** A writer that commits a layer's bytes and dies before recording them, again and again. */
        const crashingWriter = async () => {
          const next = random(99);
          while (running) {
            const layer = LAYERS[next(LAYERS.length)]!;
            const w = await fs.writer(blobKey(sha256(layer) as Digest));
            await w.write(layer);
            await w.commit();
            planted++;
            await new Promise((r) => setTimeout(r, 3 + next(10)));
          }
        };

        /** No blob row is ever without its bytes (a row that outlived a failed stat was there all along). */
        const violations: string[] = [];
        let audits = 0;
        const auditor = async () => {
          while (running) {
            const rows = await t.db.db.selectFrom('blobs').select(['id', 'digest']).execute();
            for (const row of rows) {
              if (await fs.stat(blobKey(row.digest as Digest))) continue;
              const still = await t.db.db.selectFrom('blobs').select('id').where('id', '=', row.id).executeTakeFirst();
              if (still) violations.push(row.digest);
            }
            audits++;
            await new Promise((r) => setTimeout(r, 10));
          }
        };

        let passes = 0;
        let swept = 0;
        const collector = async () => {
          while (running) {
            swept += (await t.registry.gc.run()).swept.count;
            passes++;
            await new Promise((r) => setTimeout(r, 3 + (passes % 17)));
          }
        };
        const background = [crashingWriter(), auditor(), ...Array.from({ length: dialect === 'postgres' ? 2 : 1 }, collector)];
        await Promise.all(Array.from({ length: PUSHERS }, (_, i) => pusher(i)));
        running = false;
        await Promise.all(background);

        process.stderr.write(`  ${dialect}: ${passes} GC passes swept ${swept} blobs of ${planted} planted; ${pushed} images pushed; ${audits} audits\n`);
        assert.deepEqual(unexpected, []);
        assert.deepEqual(violations, [], 'blob rows whose bytes were gone');
        assert.ok(passes >= 5, `only ${passes} GC passes ran alongside the pushes`);
        assert.ok(swept > 0, 'the sweep deleted bytes while pushes ran');
        assert.ok(pushed >= PUSHERS * PUSHES_EACH * 0.3, `only ${pushed} pushes went through`);
        const live = await assertLiveContentReadable(t.app, t.db);
        await t.registry.gc.run({ sweepAll: true });
        await t.registry.gc.run({ sweepAll: true });
        assert.deepEqual(await unreferencedContent(t.db, fs), { manifests: [], links: 0, blobs: [], strayBytes: [], missingBytes: [] });
        assert.equal(await assertLiveContentReadable(t.app, t.db), live);
        assert.deepEqual(await t.db.db.selectFrom('blob_guards').selectAll().execute(), [], 'no guard is left behind');
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
