/**
 * `quay_tag` (plugins/modules/quay_tag.py) replayed: the namespace lookup, `get_tags` by tag or digest,
 * PUT `…/tag/{tag}` with `manifest_digest`, `expiration` (epoch seconds or null) or `immutable`, and
 * DELETE `…/tag/{tag}`, deciding "changed" as the module does; on a nested repository name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, needUpdate, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

interface TagParams {
  image: string;
  tag?: string;
  /** Epoch seconds, or '' to remove the expiration. */
  expiration?: number | '';
  immutable?: boolean;
  state?: 'present' | 'absent';
}

type Outcome = { changed: boolean } | { failed: string };

/** The module's main(), over the replayed calls. */
async function quayTag(w: QuayWorld, p: TagParams): Promise<Outcome> {
  const state = p.state ?? 'present';
  const at = p.image.indexOf('@');
  const [repo, ref] = at >= 0 ? [p.image.slice(0, at), p.image.slice(at + 1)] : p.image.includes(':') ? [p.image.slice(0, p.image.lastIndexOf(':')), p.image.slice(p.image.lastIndexOf(':') + 1)] : [p.image, 'latest'];
  const img = { digest: at >= 0 ? ref : undefined, tag: at >= 0 ? undefined : ref };
  const [namespace, repository] = [repo.slice(0, repo.indexOf('/')), repo.slice(repo.indexOf('/') + 1)];
  if (!(await w.getObject(`organization/${namespace}`))) return state === 'absent' ? { changed: false } : { failed: 'namespace does not exist' };
  const full = `${namespace}/${repository}`;
  if (state === 'absent') {
    const res = await w.raw('DELETE', `repository/${full}/tag/${p.tag ?? img.tag}`);
    if ([200, 201, 202, 204].includes(res.status)) return { changed: true };
    if ([400, 404].includes(res.status)) return { changed: false };
    return { failed: `${res.status} ${res.json.error_type}: ${res.json.detail}` };
  }
  const tags = await w.getTags(namespace, repository, { tag: img.tag, digest: img.digest });
  const names = tags.map((t) => t.name);
  if ((!p.tag || names.includes(p.tag)) && p.expiration === undefined && p.immutable === undefined) return { changed: false };
  let fields: Record<string, unknown> = p.expiration !== undefined && p.expiration !== '' ? { expiration: p.expiration } : { expiration: null };
  if (p.immutable !== undefined) fields = { immutable: p.immutable };
  if (names.length === 0) return { failed: 'image does not exist' };
  const put = async (tag: string, body: unknown): Promise<Outcome | undefined> => {
    const res = await w.raw('PUT', `repository/${full}/tag/${tag}`, body);
    return [200, 201, 204].includes(res.status) ? undefined : { failed: `${res.status} ${res.json.error_type}: ${res.json.detail}` };
  };
  if (!p.tag || names.includes(p.tag)) {
    const details = { ...(p.tag ? tags.find((t) => t.name === p.tag) : tags[0]) };
    if ('end_ts' in details) details.expiration = details.end_ts;
    if (!needUpdate(details, fields)) return { changed: false };
    return (await put(details.name, fields)) ?? { changed: true };
  }
  const digest = tags[0].manifest_digest;
  const existing = await w.getTags(namespace, repository, { tag: p.tag });
  let details: Record<string, unknown> = {};
  let created = false;
  if (existing.length > 0 && existing[0].manifest_digest === digest) {
    details = { ...existing[0] };
    if ('end_ts' in details) details.expiration = details.end_ts;
  } else {
    const failed = await put(p.tag, { manifest_digest: digest });
    if (failed) return failed;
    created = true;
  }
  if (!needUpdate(details, fields)) return { changed: created };
  return (await put(p.tag, fields)) ?? { changed: true };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_tag replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    const live = async (tag: string) => (await w.getTags('qc', 'team/app', { tag }))[0];

    it('adds a tag to an image named by tag, then by digest; a second run changes nothing', async () => {
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1`, tag: 'stable' }), { changed: true });
      assert.equal((await live('stable')).manifest_digest, w.one.digest);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1`, tag: 'stable' }), { changed: false });
      assert.deepEqual(await quayTag(w, { image: `${REPO}@${w.two.digest}`, tag: 'by-digest' }), { changed: true });
      assert.deepEqual(await quayTag(w, { image: `${REPO}@${w.two.digest}`, tag: 'by-digest' }), { changed: false });
      assert.equal((await live('by-digest')).manifest_digest, w.two.digest);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1` }), { changed: false }, 'nothing asked');
    });

    it('moves a tag to another image, once', async () => {
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v2`, tag: 'stable' }), { changed: true });
      assert.equal((await live('stable')).manifest_digest, w.two.digest);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v2`, tag: 'stable' }), { changed: false });
    });

    it('sets and removes an expiration, each once (end_ts read back as the module compares it)', async () => {
      const when = Math.floor(Date.now() / 1000) + 86_400;
      assert.deepEqual(await quayTag(w, { image: `${REPO}:stable`, expiration: when }), { changed: true });
      assert.equal((await live('stable')).end_ts, when);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:stable`, expiration: when }), { changed: false });
      assert.deepEqual(await quayTag(w, { image: `${REPO}:stable`, expiration: '' }), { changed: true });
      assert.equal((await live('stable')).end_ts, undefined);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:stable`, expiration: '' }), { changed: false });
    });

    it('makes a tag immutable once; then it cannot be moved, expired or deleted (409 tag_immutable)', async () => {
      assert.equal((await live('v1')).immutable, false);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1`, immutable: true }), { changed: true });
      assert.equal((await live('v1')).immutable, true);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1`, immutable: true }), { changed: false });

      const moved = await quayTag(w, { image: `${REPO}:v2`, tag: 'v1' });
      assert.match((moved as { failed: string }).failed, /^409 tag_immutable: tag v1 of qc\/team\/app is immutable/);
      const expiring = await w.raw('PUT', `repository/${REPO}/tag/v1`, { expiration: Math.floor(Date.now() / 1000) + 3600 });
      assert.equal(expiring.status, 409);
      assert.equal(expiring.json.title, 'tag_immutable');
      const deleted = await quayTag(w, { image: `${REPO}:v1`, state: 'absent' });
      assert.match((deleted as { failed: string }).failed, /^409 tag_immutable/);
      const tag = await live('v1');
      assert.equal(tag.manifest_digest, w.one.digest);
      assert.equal(tag.end_ts, undefined);
    });

    it('a writer may make a tag immutable but only a repository admin may undo it (403)', async () => {
      const writer = await w.writer();
      assert.equal((await w.raw('PUT', `repository/${REPO}/tag/v1`, { immutable: false }, writer)).status, 403);
      assert.equal((await live('v1')).immutable, true);
      assert.equal((await w.raw('PUT', `repository/${REPO}/tag/v2`, { immutable: true }, writer)).status, 201);
      assert.equal((await w.raw('PUT', `repository/${REPO}/tag/v2`, { immutable: false }, writer)).status, 403);
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v2`, immutable: false }), { changed: true });
    });

    it('undoes immutability once, after which the tag is deleted once', async () => {
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1`, immutable: false }), { changed: true });
      assert.deepEqual(await quayTag(w, { image: `${REPO}:v1`, immutable: false }), { changed: false });
      assert.deepEqual(await quayTag(w, { image: `${REPO}:by-digest`, state: 'absent' }), { changed: true });
      assert.deepEqual(await quayTag(w, { image: `${REPO}:by-digest`, state: 'absent' }), { changed: false });
      assert.equal(await live('by-digest'), undefined);
    });

    it('fails on an image that does not exist, and reports an absent namespace or tag as unchanged', async () => {
      assert.deepEqual(await quayTag(w, { image: `${REPO}:nope`, tag: 'x' }), { failed: 'image does not exist' });
      assert.deepEqual(await quayTag(w, { image: 'nosuchorg/team/app:v1', tag: 'x', state: 'absent' }), { changed: false });
      assert.deepEqual(await quayTag(w, { image: 'nosuchorg/team/app:v1', tag: 'x' }), { failed: 'namespace does not exist' });
      assert.equal((await w.raw('DELETE', `repository/${REPO}/tag/nope`)).status, 404);
    });

    it('refuses bad tag input with 400 and no 5xx', async () => {
      for (const body of [{ immutable: 'yes' }, { immutable: null }, { expiration: 'soon' }, {}, { manifest_digest: 'sha256:short' }]) {
        assert.equal((await w.raw('PUT', `repository/${REPO}/tag/v1`, body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('PUT', `repository/${REPO}/tag/nope`, { immutable: true })).status, 404);
      assert.equal((await w.raw('PUT', `repository/${REPO}/tag/-bad`, { immutable: true })).status, 400);
    });
  });
}
