/**
 * End to end, over real HTTP against a real `wharf serve`: sign in as Quay's automation does (CSRF
 * token, session cookie), create an app-specific token through /api/v1/user/apptoken, then use it as
 * the password of user `$app` with skopeo (push and pull of a nested repository) and `podman login` +
 * `podman pull`; revoking it locks both clients out.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { buildImage, KiB, type BuiltImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanLogin, podmanPull, PodmanError, type PodmanStore } from '../helpers/podman.js';
import { fetchTransport, QuayClient } from '../helpers/quay-session.js';
import { dockerRef, ociRef, skopeoCopy, skopeoInspect, SkopeoError, type Credentials } from '../helpers/skopeo.js';
import { ADMIN, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

describe('app-specific tokens with skopeo and podman', () => {
  let wharf: WharfProcess | undefined;
  let work: string;
  let image: BuiltImage;
  let store: PodmanStore | undefined;
  let creds: Credentials;
  let uuid: string;
  let q: QuayClient;

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

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-apptoken-'));
    image = await buildImage(join(work, 'src'), { tag: 'v1', seed: 'e2e-apptoken', layers: [{ files: [{ path: 'etc/app', size: 16 * KiB }] }] });
    wharf = await startWharf();
  });
  after(async () => {
    await store?.cleanup();
    await wharf?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('signs in with user and password and creates an app token', async () => {
    q = await QuayClient.signIn(fetchTransport(wharf!.url), ADMIN.username, ADMIN.password);
    assert.match(String(q.cookies.get('wharf_session')), /^[A-Za-z0-9_-]{43}$/);
    const res = await q.api('POST', 'user/apptoken', { title: 'e2e' });
    assert.equal(res.status, 200, res.raw);
    creds = { username: '$app', password: res.json.token.token_code };
    uuid = res.json.token.uuid;
  });

  test('skopeo pushes and pulls a nested repository with it', async () => {
    const ref = dockerRef(wharf!.host, 'e2e/team/app', 'v1');
    const pushed = await skopeoCopy(ociRef(join(work, 'src'), 'v1'), ref, { creds, preserveDigests: true });
    assert.equal(pushed.digest, image.manifestDigest);
    const inspected = await skopeoInspect(ref, { creds });
    assert.equal(inspected.Digest, image.manifestDigest);
  });

  test('podman logs in as $app and pulls', async () => {
    store = await createPodmanStore();
    await podmanLogin(store, wharf!.host, creds);
    const pulled = await podmanPull(`${wharf!.host}/e2e/team/app:v1`, { store });
    assert.equal(pulled.digest, image.manifestDigest);
  });

  test('revoking the token locks both clients out; signing out ends the session', async () => {
    const revoked = await q.api('DELETE', `user/apptoken/${uuid}`);
    assert.equal(revoked.status, 204, revoked.raw);
    await assert.rejects(skopeoInspect(dockerRef(wharf!.host, 'e2e/team/app', 'v1'), { creds }), SkopeoError);
    await assert.rejects(podmanLogin(store!, wharf!.host, creds), PodmanError);
    const cookie = `wharf_session=${q.cookies.get('wharf_session')}`;
    const out = await q.signOut();
    assert.equal(out?.status, 200);
    assert.equal((await q.api('GET', 'user/', undefined, { cookie })).status, 401, 'the ended session');
  });
});
