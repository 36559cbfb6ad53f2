/**
 * `wharf gc` of the real CLI against a temporary SQLite data directory with the filesystem driver:
 * `--dry-run` reports what would go and changes nothing; a pass then removes exactly that, bytes
 * included, and sweeps bytes that no blob row records; a dry run afterwards finds nothing.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createDatabase, createServices, createStorage } from '../../src/main/compose.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { RepositoryName, Tag } from '../../src/oci/reference.js';
import { blobKey } from '../../src/storage/keys.js';
import { runWharf, type CliResult } from '../helpers/wharf-cli.js';


function wharf(dataDir: string, args: string[]): Promise<CliResult> {
  return runWharf(dataDir, args, { env: { WHARF_GC_GRACE_PERIOD: '0' } });
}

const exists = (path: string) => access(path).then(
  () => true,
  () => false,
);

describe('wharf gc', () => {
  let dir: string;
  let kept: { manifest: Digest; layer: Digest };
  let gone: { manifest: Digest; config: Digest; layer: Digest };
  /** Bytes a writer committed before it died, with no blob row. */
  const stray = Buffer.from('left by a crash');
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-gc-cli-'));
    const config = loadConfig({ env: {}, overrides: { data_dir: dir, log_level: 'silent' } });
    const db = await createDatabase(config);
    try {
      const storage = await createStorage(config);
      const w = await storage.writer(blobKey(digestOf(stray)));
      await w.write(stray);
      await w.commit();
      const { registry } = createServices({ db, storage, config });
      const repo = await registry.repositories.ensure('acme/app' as RepositoryName);
      const push = async (seed: string, tag: string) => {
        const config = Buffer.from(JSON.stringify({ os: 'linux', seed }));
        const layer = Buffer.from(`layer ${seed}`);
        for (const b of [config, layer]) await registry.uploads.monolithic(repo, digestOf(b), (async function* () { yield b; })(), b.length);
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
            layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
          }),
        );
        await registry.manifests.put(repo, { kind: 'tag', tag: tag as Tag }, manifest, 'application/vnd.oci.image.manifest.v1+json');
        return { manifest: digestOf(manifest), config: digestOf(config), layer: digestOf(layer) };
      };
      kept = await push('kept', 'v1');
      gone = await push('gone', 'v0');
      await registry.manifests.delete(repo, { kind: 'tag', tag: 'v0' as Tag });
      // The deleted tag ended three weeks ago: past the default two-week window.
      await db.db.updateTable('tags').set({ lifetime_end: Date.now() - 21 * 86_400_000 }).where('name', '=', 'v0').execute();
    } finally {
      await db.close();
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const onDisk = (d: Digest) => exists(join(dir, 'blobs', blobKey(d)));

  it('--dry-run reports what a pass would remove and changes nothing', async () => {
    const json = await wharf(dir, ['gc', '--dry-run', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as {
      dryRun: boolean;
      tags: number;
      manifests: { count: number; sample: string[] };
      links: number;
      blobs: { count: number; bytes: number; sample: string[] };
      swept: { count: number; bytes: number; sample: string[] };
      sweptKeys: number;
    };
    assert.equal(report.dryRun, true);
    assert.equal(report.tags, 1);
    assert.deepEqual(report.manifests.sample, [gone.manifest]);
    assert.equal(report.links, 2);
    assert.deepEqual([...report.blobs.sample].sort(), [gone.config, gone.layer].sort());
    assert.equal(report.blobs.bytes, JSON.stringify({ os: 'linux', seed: 'gone' }).length + 'layer gone'.length);
    // The sweep looks at every blob file: four of the pushed blobs and the stray one.
    assert.deepEqual(report.swept, { count: 1, bytes: stray.length, sample: [digestOf(stray)] });
    assert.equal(report.sweptKeys, 5);

    const text = await wharf(dir, ['gc', '--dry-run']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Dry run: nothing was changed\./);
    assert.match(text.stdout, /tag history rows past the time-machine window: 1/);
    assert.match(text.stdout, new RegExp(`manifests: 1 \\(\\d+ bytes\\)\\n    ${gone.manifest}`));
    assert.match(text.stdout, /blobs: 2 /);
    assert.match(text.stdout, new RegExp(`blob bytes in storage that no blob row records \\(of 5 blob keys checked\\): 1 \\(${stray.length} bytes\\)\\n    ${digestOf(stray)}`));
    for (const d of [gone.config, gone.layer, kept.layer, digestOf(stray)]) assert.equal(await onDisk(d), true);
  });

  it('removes exactly that, bytes included; a second dry run finds nothing', async () => {
    const run = await wharf(dir, ['gc']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^A pass removed/);
    assert.match(run.stdout, /manifests: 1 /);
    assert.equal(await onDisk(gone.layer), false);
    assert.equal(await onDisk(gone.config), false);
    assert.equal(await onDisk(kept.layer), true);
    assert.match(run.stdout, /blob bytes in storage that no blob row records \(of 3 blob keys checked\): 1 /);
    assert.equal(await onDisk(digestOf(stray)), false);
    const again = JSON.parse((await wharf(dir, ['gc', '--dry-run', '--json'])).stdout) as { tags: number; manifests: { count: number }; links: number; blobs: { count: number }; swept: { count: number } };
    assert.deepEqual([again.tags, again.manifests.count, again.links, again.blobs.count, again.swept.count], [0, 0, 0, 0, 0]);
  });

  it('refuses arguments and foreign options', async () => {
    const extra = await wharf(dir, ['gc', '--password', 'x']);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /does not take --password/);
  });
});
