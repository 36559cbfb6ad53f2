/**
 * `wharf serve` runs due mirrors: a Wharf process mirrors a repository of a second Wharf process (token
 * auth, the admin's credentials sealed with the mirroring process's secret key) into a nested
 * repository, without being asked; skopeo pulls the result; a sync-now re-sync moves no bytes; the
 * metrics count the runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/db/connect.js';
import type { DatabaseHandle } from '../../src/db/connect.js';
import { MirrorStore } from '../../src/db/mirror-store.js';
import { waitFor } from '../helpers/e2e-utils.js';
import { insertMirror, testSecretBox, updateMirror } from '../helpers/mirror-rows.js';
import { pushRandomImage, pushRandomIndex } from '../helpers/registry-push.js';
import { runSkopeo } from '../helpers/skopeo.js';
import { ADMIN, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

describe('wharf serve: repository mirrors from a Wharf upstream with token auth', () => {
  let upstream: WharfProcess;
  let local: WharfProcess;
  let db: DatabaseHandle;
  const { box, key } = testSecretBox();
  const admin = `${ADMIN.username}:${ADMIN.password}`;

  before(async () => {
    upstream = await startWharf();
    local = await startWharf({
      env: {
        WHARF_PROXY_CACHE_SECRET_KEY: key,
        WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1',
        WHARF_MIRROR_POLL_INTERVAL: '200ms',
      },
    });
    db = await openDatabase({ url: local.dbUrl, dataDir: local.dataDir, poolSize: 2 });
  });
  after(async () => {
    await db?.close();
    await local?.stop();
    await upstream?.stop();
  });

  it('syncs on its own, serves the copy to skopeo, re-syncs with no bytes, and exports wharf_mirror_* metrics', async () => {
    const img = await pushRandomImage(upstream.url, 'e2e/mirrored', 'v1', { basic: admin });
    const idx = await pushRandomIndex(upstream.url, 'e2e/mirrored', 'multi', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ], { basic: admin });
    const id = await insertMirror(db, 'mirror/upstreams/wharf/app', {
      externalReference: `${upstream.host}/e2e/mirrored`,
      globs: ['v1', 'multi'],
      credentials: { username: ADMIN.username, password: ADMIN.password, box },
    });
    // Readable by anyone: what is checked here is the content, not who may read it.
    await db.db.updateTable('repositories').set({ visibility: 'public' }).where('id', '=', id).execute();
    const mirrors = new MirrorStore(db.db, db.dialect);
    await waitFor('the mirror to be synced', async () => (await mirrors.find(id))?.sync.last !== null, 30_000, 100);
    const first = (await mirrors.find(id))!;
    assert.equal(first.sync.last?.outcome, 'SUCCESS', first.sync.last?.message ?? '');
    assert.equal(first.sync.status, 'SUCCESS');
    assert.ok(first.sync.last!.bytes > 64 * 1024);

    const creds = null;
    const raw = await runSkopeo(['inspect', '--raw', '--tls-verify=false', `docker://${local.host}/mirror/upstreams/wharf/app:v1`], { creds });
    assert.deepEqual(raw.stdout, img.manifest);
    const index = await runSkopeo(['inspect', '--raw', '--tls-verify=false', `docker://${local.host}/mirror/upstreams/wharf/app:multi`], { creds });
    assert.deepEqual(index.stdout, idx.index);
    const arm = await runSkopeo(['--override-arch', 'arm64', 'inspect', '--tls-verify=false', `docker://${local.host}/mirror/upstreams/wharf/app:multi`], { creds });
    assert.equal((JSON.parse(arm.stdout.toString()) as { Architecture: string }).Architecture, 'arm64');

    await updateMirror(db, id, { sync_status: 'SYNC_NOW', sync_expires_at: null });
    await waitFor('the re-sync', async () => ((await mirrors.find(id))?.sync.last?.finishedAt ?? 0) > first.sync.last!.finishedAt, 30_000, 100);
    const second = (await mirrors.find(id))!;
    assert.equal(second.sync.last?.outcome, 'SUCCESS', second.sync.last?.message ?? '');
    assert.equal(second.sync.last?.bytes, 0);
    assert.match(second.sync.last!.message!, /2 tags: 0 changed, 2 unchanged/);

    const metrics = await (await fetch(`${local.url}/metrics`)).text();
    assert.match(metrics, /^wharf_mirror_syncs_total\{outcome="SUCCESS"\} 2$/m);
    assert.match(metrics, /^wharf_mirror_last_sync_status\{repository="mirror\/upstreams\/wharf\/app"\} 1$/m);
    assert.match(metrics, /^wharf_mirror_workers_active 0$/m);
  });
});
