/**
 * End to end: an immutable tag against a real client. skopeo pushes an image to a nested repository
 * of a real Wharf process, the tag is made immutable through `/api/v1` (as `quay_tag` does), and then
 * skopeo's push of another image over it and its delete are refused — the registry answers `DENIED`,
 * which skopeo reports with Wharf's message — while re-pushing the same image still succeeds; once a
 * repository admin makes the tag mutable again, the push goes through.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { buildImage, type BuiltImage } from '../helpers/oci-layout.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy, skopeoDelete, skopeoInspect, SkopeoError } from '../helpers/skopeo.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

describe('immutable tags ⇄ skopeo', () => {
  let wharf: WharfProcess | undefined;
  let work: string;
  let first: BuiltImage;
  let second: BuiltImage;
  const repo = 'org/team/immutable';

  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-4000)}`);
        throw err;
      }
    });
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const { username, password } = wharf!.admin;
    const res = await fetch(`${wharf!.url}/api/v1/${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json().catch(() => undefined)) as any };
  };
  const refused = async (p: Promise<unknown>): Promise<string> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof SkopeoError, `expected skopeo to fail, got ${String(err)}`);
    return err.stderr;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-immutable-'));
    first = await buildImage(join(work, 'src'), { tag: 'first', seed: 'immutable-first', layers: [{ files: [{ path: 'etc/first', content: 'first\n' }] }] });
    second = await buildImage(join(work, 'src'), { tag: 'second', seed: 'immutable-second', layers: [{ files: [{ path: 'etc/second', content: 'second\n' }] }] });
    wharf = await startWharf();
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    await wharf?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('a push over an immutable tag is refused with DENIED and the tag keeps its image', async () => {
    await skopeoCopy(ociRef(join(work, 'src'), 'first'), dockerRef(wharf!.host, repo, 'v1'), { preserveDigests: true });
    const made = await api('PUT', `repository/${repo}/tag/v1`, { immutable: true });
    assert.equal(made.status, 201, JSON.stringify(made.json));

    const stderr = await refused(skopeoCopy(ociRef(join(work, 'src'), 'second'), dockerRef(wharf!.host, repo, 'v1'), { preserveDigests: true }));
    assert.match(stderr, /denied/i);
    assert.match(stderr, /tag v1 of org\/team\/immutable is immutable/);
    assert.equal((await skopeoInspect(dockerRef(wharf!.host, repo, 'v1'))).Digest, first.manifestDigest);

    const tags = await api('GET', `repository/${repo}/tag/?specificTag=v1&onlyActiveTags=false`);
    assert.deepEqual(tags.json.tags.map((t: any) => [t.manifest_digest, t.immutable]), [[first.manifestDigest, true]], 'no new row, nothing moved');
  });

  test('re-pushing the image the tag already points at succeeds', async () => {
    const again = await skopeoCopy(ociRef(join(work, 'src'), 'first'), dockerRef(wharf!.host, repo, 'v1'), { preserveDigests: true });
    assert.equal(again.digest, first.manifestDigest);
  });

  test('skopeo delete of the tag is refused too', async () => {
    const stderr = await refused(skopeoDelete(dockerRef(wharf!.host, repo, 'v1')));
    assert.match(stderr, /immutable/);
    assert.equal((await skopeoInspect(dockerRef(wharf!.host, repo, 'v1'))).Digest, first.manifestDigest);
  });

  test('once made mutable again, the push moves the tag', async () => {
    assert.equal((await api('PUT', `repository/${repo}/tag/v1`, { immutable: false })).status, 201);
    await skopeoCopy(ociRef(join(work, 'src'), 'second'), dockerRef(wharf!.host, repo, 'v1'), { preserveDigests: true });
    assert.equal((await skopeoInspect(dockerRef(wharf!.host, repo, 'v1'))).Digest, second.manifestDigest);
  });
});
