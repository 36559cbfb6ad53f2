/**
 * Two `wharf serve` processes on one PostgreSQL database and one bucket prefix behind haproxy (round
 * robin, no stickiness) behave as one registry (docs/operations.md#several-processes):
 * - skopeo, podman and ctr push and pull nested repositories through haproxy;
 * - an upload started on one process is continued, inspected and completed on the other; two chunks
 *   of one upload reaching both processes at once do not both land: one gets 416;
 * - a bearer token, a web session and an API token obtained from one process are honoured by the other
 *   (the signing keys and sessions are rows of the shared database);
 * - failed logins count against one limit across the processes.
 * One cluster serves every test of the file; each test uses its own repositories and user names.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { ctrPull, ctrRemoveImages, startContainerd, type ContainerdProcess } from '../helpers/containerd.js';
import { fetchBody, rethrowFailures, sha256, waitFor } from '../helpers/e2e-utils.js';
import { buildImage, expectedDigestTree, KiB, layoutDigestTree, verifyLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanPull, runPodman, type PodmanStore } from '../helpers/podman.js';
import { dockerRef, ociRef, skopeoCopy } from '../helpers/skopeo.js';
import { pushRandomImage } from '../helpers/registry-push.js';
import { basicAuth, type WharfProcess } from '../helpers/wharf-process.js';
import { withAccounts } from '../helpers/wharf-accounts.js';

/** Failed logins allowed per user name and per client address in a minute (auth.login_failures_per_minute). */
const LOGIN_LIMIT = 4;

describe('two processes behind haproxy behave as one registry', () => {
  let cluster: Cluster | undefined;
  let containerd: ContainerdProcess | undefined;
  let work: string;
  let image: BuiltImage;
  const stores: PodmanStore[] = [];

  const C = (): Cluster => {
    if (!cluster) throw new Error('the cluster did not start');
    return cluster;
  };
  const P = (i: number): WharfProcess => C().processes[i]!;

  /** Like `it`, but a failure also prints the tails of the processes' output. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        for (const [i, p] of (cluster?.processes ?? []).entries()) t.diagnostic(`wharf${i + 1} output (tail):\n${p.output().slice(-3000)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-cluster-'));
    image = await buildImage(join(work, 'src'), {
      tag: 'v1',
      seed: 'e2e-cluster',
      layers: [{ files: [{ path: 'usr/lib/base.bin', size: 384 * KiB }] }, { files: [{ path: 'usr/bin/app', size: 64 * KiB, mode: 0o755 }] }],
    });
    const started = await Promise.allSettled([
      startCluster({ processes: 2, env: { WHARF_AUTH_LOGIN_FAILURES_PER_MINUTE: String(LOGIN_LIMIT) } }).then((c) => (cluster = c)),
      startContainerd().then((c) => (containerd = c)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });

  after(async () => {
    const stopped = await Promise.allSettled([cluster?.stop(), containerd?.stop(), ...stores.map((s) => s.cleanup())]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures(stopped);
  });

  test('the processes-only /internal/ endpoint is refused at the load balancer and, without the shared secret, by each process', async () => {
    const digest = `sha256:${'0'.repeat(64)}`;
    const outside = await fetch(`${C().url}/internal/fills/${digest}`);
    assert.equal(outside.status, 404, 'haproxy routes /internal/ from outside');
    await outside.arrayBuffer();
    for (const i of [0, 1]) {
      const direct = await fetch(`${P(i).url}/internal/fills/${digest}`);
      assert.equal(direct.status, 401, `process ${i + 1} answers /internal/ without the secret`);
      await direct.arrayBuffer();
    }
  });

  /** wharf_http_requests_total of one process for blob and upload routes, summed over methods and statuses. */
  const served = async (p: WharfProcess): Promise<number> => {
    const text = await (await fetch(`${p.url}/metrics`)).text();
    let sum = 0;
    for (const m of text.matchAll(/^wharf_http_requests_total\{([^}]*)\} (\S+)$/gm)) if (/route="(blob|upload)_/.test(m[1]!)) sum += Number(m[2]);
    return sum;
  };
  const blobRoutes = async (): Promise<number[]> => Promise.all(C().processes.map(served));

  test('skopeo pushes and pulls a four-component repository; both processes take part', async () => {
    const before = await blobRoutes();
    const ref = dockerRef(C().host, 'e2e/cluster/skopeo/app', 'v1');
    const pushed = await skopeoCopy(ociRef(join(work, 'src'), 'v1'), ref, { preserveDigests: true, creds: C().admin });
    assert.equal(pushed.digest, image.manifestDigest);
    const out = join(work, 'skopeo-out');
    const pulled = await skopeoCopy(ref, ociRef(out, 'pulled'), { preserveDigests: true, creds: C().admin });
    assert.equal(pulled.digest, image.manifestDigest);
    assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(image));
    await verifyLayoutBlobs(out);
    const after = await blobRoutes();
    assert.ok(after.every((n, i) => n > before[i]!), `every process served blob requests (before ${before}, after ${after})`);
  });

  test('podman pushes and pulls three- and four-component repositories', async () => {
    const store = await createPodmanStore();
    stores.push(store);
    const user = C().admin;
    const creds = ['--creds', `${user.username}:${user.password}`];
    const source = `${C().host}/e2e/cluster/podman-src/app:v1`;
    await skopeoCopy(ociRef(join(work, 'src'), 'v1'), `docker://${source}`, { preserveDigests: true, creds: user });
    await runPodman(store, ['pull', '--tls-verify=false', ...creds, source]);
    for (const target of [`${C().host}/e2e/cluster/podman/app:v1`, `${C().host}/e2e/cluster/podman:v1`]) {
      await runPodman(store, ['tag', source, target]);
      await runPodman(store, ['push', '--tls-verify=false', ...creds, target]);
      const pulled = await podmanPull(target, { creds: user });
      assert.equal(pulled.imageId, image.configDigest.slice('sha256:'.length), target);
    }
  });

  test('ctr pushes and pulls a four-component repository', async () => {
    const d = containerd!;
    const user = C().admin;
    const source = `${C().host}/e2e/cluster/ctr-src/app:v1`;
    await skopeoCopy(ociRef(join(work, 'src'), 'v1'), `docker://${source}`, { preserveDigests: true, creds: user });
    await ctrPull(d, source, { user });
    const target = `${C().host}/e2e/cluster/ctr/app:v1`;
    await d.ctr(['images', 'tag', source, target]);
    await d.ctr(['images', 'push', '--plain-http', '--user', `${user.username}:${user.password}`, target]);
    await ctrRemoveImages(d);
    const pulled = await ctrPull(d, target, { user });
    assert.equal(pulled.digest, image.manifestDigest);
    await ctrRemoveImages(d);
  });

  test('an upload started on one process continues on the other: chunks, status and completion alternate', async () => {
    const repo = 'e2e/cluster/upload';
    const token = await bearer(P(0), repo, 'pull,push');
    const auth = { authorization: `Bearer ${token}` };
    const chunks = [randomBytes(300 * KiB), randomBytes(7 * KiB), randomBytes(1200 * KiB), randomBytes(1)];
    const whole = Buffer.concat(chunks);
    const digest = sha256(whole);

    const started = await fetch(`${P(0).url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(started.status, 202);
    let location = new URL(started.headers.get('location')!, P(0).url);
    let offset = 0;
    for (const [i, chunk] of chunks.entries()) {
      const p = P((i + 1) % 2);
      const res = await fetch(`${p.url}${location.pathname}${location.search}`, {
        method: 'PATCH',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: fetchBody(chunk),
      });
      assert.equal(res.status, 202, `chunk ${i} on wharf${(i + 1) % 2 + 1}: ${await res.clone().text()}`);
      offset += chunk.length;
      assert.equal(res.headers.get('range'), `0-${offset - 1}`);
      location = new URL(res.headers.get('location')!, p.url);
      // The status, asked of the other process, reports what the chunk added.
      const q = P(i % 2);
      const status = await fetch(`${q.url}${location.pathname}${location.search}`, { headers: auth });
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${offset - 1}`, `status on wharf${(i % 2) + 1} after chunk ${i}`);
    }
    // A chunk that does not start at the offset is refused by either process with the offset.
    for (const p of C().processes) {
      const stale = await fetch(`${p.url}${location.pathname}${location.search}`, {
        method: 'PATCH',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `0-0` },
        body: fetchBody(Buffer.from('x')),
      });
      assert.equal(stale.status, 416);
      assert.equal(stale.headers.get('range'), `0-${offset - 1}`);
    }
    const sep = location.search ? '&' : '?';
    const done = await fetch(`${P(1).url}${location.pathname}${location.search}${sep}digest=${digest}`, { method: 'PUT', headers: auth });
    assert.equal(done.status, 201, await done.clone().text());
    for (const url of [P(0).url, P(1).url, C().url]) {
      const got = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { headers: auth });
      assert.equal(got.status, 200);
      assert.equal(sha256(new Uint8Array(await got.arrayBuffer())), digest);
    }
  });

  test('two PATCHes of one upload on the two processes at once: one is written, the other gets 416 with the stored range, and the digest check holds', async () => {
    const repo = 'e2e/cluster/upload-race';
    const auth = { authorization: `Bearer ${await bearer(P(0), repo, 'pull,push')}` };
    // A first chunk above S3's part minimum: the racing chunks continue the stored object by a server-side copy.
    const prefix = randomBytes(6 * 1024 * KiB);
    const started = await fetch(`${P(0).url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(started.status, 202);
    let loc = new URL(started.headers.get('location')!, P(0).url);
    const first = await fetch(`${P(0).url}${loc.pathname}${loc.search}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `0-${prefix.length - 1}` },
      body: fetchBody(prefix),
    });
    assert.equal(first.status, 202, await first.clone().text());
    loc = new URL(first.headers.get('location')!, P(0).url);
    const id = loc.pathname.split('/').pop()!;
    const path = `${loc.pathname}${loc.search}`;
    const range = (n: number) => `${prefix.length}-${prefix.length + n - 1}`;
    const stored = `0-${prefix.length - 1}`;

    // 1. wharf1 is receiving a chunk (its request is still arriving) when the same chunk reaches wharf2.
    const mine = randomBytes(2 * 1024 * KiB);
    const theirs = randomBytes(mine.length);
    const updatedAt = async () => {
      const client = new pg.Client({ connectionString: C().dbUrl });
      await client.connect();
      try {
        return Number((await client.query('select updated_at from uploads where id = $1', [id])).rows[0]?.updated_at);
      } finally {
        await client.end();
      }
    };
    const idle = await updatedAt();
    const slow = httpRequest(`${P(0).url}${path}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': range(mine.length), 'content-length': mine.length },
    });
    const slowDone = new Promise<{ status: number; range: string | undefined; body: string }>((resolve, reject) => {
      slow.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, range: res.headers.range, body }));
      });
      slow.on('error', reject);
    });
    slow.write(mine.subarray(0, 1024 * KiB));
    // wharf1 started on the chunk: it marked the upload active (a chunk's first step on any process).
    await waitFor('wharf1 to start writing the chunk', async () => (await updatedAt()) !== idle, 30_000, 50);
    const raced = await fetch(`${P(1).url}${path}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': range(theirs.length) },
      body: fetchBody(theirs),
    });
    const racedBody = await raced.text();
    slow.end(mine.subarray(1024 * KiB));
    const won = await slowDone;
    assert.equal(raced.status, 416, `wharf2 took a chunk while wharf1 wrote one: ${racedBody}`);
    assert.equal(raced.headers.get('range'), stored, 'the range of the bytes stored');
    assert.equal(JSON.parse(racedBody).errors[0].code, 'BLOB_UPLOAD_INVALID');
    assert.equal(won.status, 202, won.body);
    assert.equal(won.range, `0-${prefix.length + mine.length - 1}`);

    // 2. Two more chunks sent at once, one to each process: exactly one is written.
    const at = prefix.length + mine.length;
    const two = [randomBytes(1024 * KiB), randomBytes(1024 * KiB)];
    const results = await Promise.all(
      two.map((chunk, i) =>
        fetch(`${P(i).url}${path}`, {
          method: 'PATCH',
          headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + chunk.length - 1}` },
          body: fetchBody(chunk),
        }).then(async (r) => ({ status: r.status, range: r.headers.get('range'), body: await r.text() })),
      ),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [202, 416], JSON.stringify(results));
    const winner = two[results.findIndex((r) => r.status === 202)]!;
    const loser = two[results.findIndex((r) => r.status === 416)]!;
    assert.match(results.find((r) => r.status === 416)!.range!, /^0-\d+$/);

    // The final digest check holds: the bytes of the refused chunks make no blob, the written ones do.
    const sep = loc.search ? '&' : '?';
    for (const [i, wrong] of [Buffer.concat([prefix, theirs, winner]), Buffer.concat([prefix, mine, loser])].entries()) {
      const res = await fetch(`${P(i).url}${path}${sep}digest=${sha256(wrong)}`, { method: 'PUT', headers: auth });
      assert.equal(res.status, 400, await res.text());
    }
    const right = Buffer.concat([prefix, mine, winner]);
    const done = await fetch(`${P(1).url}${path}${sep}digest=${sha256(right)}`, { method: 'PUT', headers: auth });
    assert.equal(done.status, 201, await done.clone().text());
    const got = await fetch(`${C().url}/v2/${repo}/blobs/${sha256(right)}`, { headers: auth });
    assert.equal(got.status, 200);
    assert.equal(sha256(new Uint8Array(await got.arrayBuffer())), sha256(right));
  });

  test('a completion with the wrong digest on the other process is refused; the upload stays resumable', async () => {
    const repo = 'e2e/cluster/upload-wrong';
    const auth = { authorization: `Bearer ${await bearer(P(1), repo, 'pull,push')}` };
    const first = randomBytes(64 * KiB);
    const started = await fetch(`${P(1).url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    const loc = new URL(started.headers.get('location')!, P(1).url);
    const patched = await fetch(`${P(1).url}${loc.pathname}${loc.search}`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: fetchBody(first) });
    assert.equal(patched.status, 202);
    const next = new URL(patched.headers.get('location')!, P(1).url);
    const sep = next.search ? '&' : '?';
    const wrong = await fetch(`${P(0).url}${next.pathname}${next.search}${sep}digest=${sha256(Buffer.from('other'))}`, { method: 'PUT', headers: auth });
    assert.equal(wrong.status, 400);
    assert.equal(((await wrong.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DIGEST_INVALID');
    const rest = randomBytes(10 * KiB);
    const ok = await fetch(`${P(0).url}${next.pathname}${next.search}${sep}digest=${sha256(Buffer.concat([first, rest]))}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: fetchBody(rest),
    });
    assert.equal(ok.status, 201, await ok.clone().text());
  });

  test('a bearer token issued by one process is accepted by the other; both sign with the key stored in the database', async () => {
    const repo = 'e2e/cluster/token';
    const kids = await signingKids(C().dbUrl);
    assert.ok(kids.length >= 1, 'the signing key is a row of the shared database');
    for (const [issuer, verifier] of [[P(0), P(1)], [P(1), P(0)]] as const) {
      const token = await bearer(issuer, repo, 'pull,push');
      const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string };
      assert.ok(kids.includes(header.kid), `the token's kid ${header.kid} is a stored key`);
      const res = await fetch(`${verifier.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 202, `the token of ${issuer.url} lets ${verifier.url} start an upload`);
      const cancelled = await fetch(new URL(res.headers.get('location')!, verifier.url), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      assert.equal(cancelled.status, 204);
    }
    // A token of no known key is refused by both, so acceptance above is not a blanket one.
    const forged = await bearer(P(0), repo, 'pull');
    const [h, c] = forged.split('.');
    const other = `${h}.${c}.${Buffer.from('x'.repeat(64)).toString('base64url')}`;
    for (const p of C().processes) assert.equal((await fetch(`${p.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${other}` } })).status, 401);
  });

  test('a web session opened on one process works on the other, and signing out on one ends it on both', async () => {
    const csrf = await fetch(`${P(0).url}/csrf_token`);
    const preCookie = cookies(csrf);
    const { csrf_token } = (await csrf.json()) as { csrf_token: string };
    const signin = await fetch(`${P(1).url}/api/v1/signin`, {
      method: 'POST',
      headers: { cookie: preCookie, 'x-csrf-token': csrf_token, 'content-type': 'application/json' },
      body: JSON.stringify({ username: C().admin.username, password: C().admin.password }),
    });
    assert.equal(signin.status, 200, await signin.clone().text());
    const session = cookies(signin);
    const next = signin.headers.get('x-next-csrf-token')!;
    for (const p of C().processes) {
      const me = await fetch(`${p.url}/api/v1/user/`, { headers: { cookie: session } });
      assert.equal(me.status, 200, `the session on ${p.url}`);
      assert.equal(((await me.json()) as { username: string }).username, C().admin.username);
    }
    const out = await fetch(`${P(0).url}/api/v1/signout`, { method: 'POST', headers: { cookie: session, 'x-csrf-token': next } });
    assert.equal(out.status, 200);
    for (const p of C().processes) assert.equal((await fetch(`${p.url}/api/v1/user/`, { headers: { cookie: session } })).status, 401, `signed out on ${p.url}`);
  });

  test('failed logins count against one limit across the processes', async () => {
    const username = `throttled-${randomBytes(3).toString('hex')}`;
    // A client address of its own (haproxy's X-Forwarded-For is believed from 127.0.0.1): the test's
    // failures must not throttle the other tests' logins from 127.0.0.1.
    const from = { 'x-forwarded-for': '203.0.113.7' };
    const attempt = (p: WharfProcess) => fetch(`${p.url}/v2/`, { headers: { ...from, authorization: basicAuth({ username, password: 'wrong' }) } });
    for (let i = 0; i < LOGIN_LIMIT; i++) {
      const res = await attempt(P(i % 2));
      assert.equal(res.status, 401, `failure ${i + 1} on wharf${(i % 2) + 1}`);
    }
    for (const p of C().processes) {
      const res = await attempt(p);
      assert.equal(res.status, 429, `throttled on ${p.url} after ${LOGIN_LIMIT} failures spread over both processes`);
      assert.ok(Number(res.headers.get('retry-after')) > 0);
    }
    // The same limit through haproxy, and per user name from another address too.
    assert.equal((await fetch(`${C().url}/v2/`, { headers: { 'x-forwarded-for': '203.0.113.8', authorization: basicAuth({ username, password: 'wrong' }) } })).status, 429);
  });

  test('an API token works on both processes, and so does a registry token it logs in for; revoked, both refuse both', async () => {
    const repo = 'e2e/cluster/api-token';
    await pushRandomImage(C().url, repo, 'v1', { basic: `${C().admin.username}:${C().admin.password}` });
    const made = await withAccounts(P(0), (a) => a.apiTokens.create(C().admin.username, { name: 'cluster', scopes: ['repo:read', 'repo:write', 'user:read'] }));
    const apiAuth = { authorization: `Bearer ${made.secret}` };
    const viaToken = { ...P(0), admin: { username: C().admin.username, password: made.secret } };
    const jwt = await bearer(viaToken, repo, 'pull');
    const jwtAuth = { authorization: `Bearer ${jwt}` };
    for (const p of C().processes) {
      assert.equal((await fetch(`${p.url}/api/v1/user/`, { headers: apiAuth })).status, 200, `API token on ${p.url}`);
      assert.equal((await fetch(`${p.url}/v2/${repo}/tags/list`, { headers: jwtAuth })).status, 200, `registry token on ${p.url}: accepted`);
    }
    await withAccounts(P(1), (a) => a.apiTokens.revoke(C().admin.username, made.token.id));
    for (const p of C().processes) {
      assert.equal((await fetch(`${p.url}/api/v1/user/`, { headers: apiAuth })).status, 401, `revoked API token on ${p.url}`);
      assert.equal((await fetch(`${p.url}/v2/${repo}/tags/list`, { headers: jwtAuth })).status, 401, `registry token of a revoked API token on ${p.url}`);
    }
  });
});

/** A registry token from `p`'s token endpoint for `repo` with `actions`, as the admin. */
async function bearer(p: Pick<WharfProcess, 'url' | 'admin'>, repo: string, actions: string): Promise<string> {
  const res = await fetch(`${p.url}/v2/auth?scope=repository:${repo}:${actions}`, { headers: { authorization: basicAuth(p.admin) } });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { token: string }).token;
}

/** The `kid`s of the signing keys in the database. */
async function signingKids(dbUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    return (await client.query<{ kid: string }>('select kid from signing_keys')).rows.map((r) => r.kid);
  } finally {
    await client.end();
  }
}

/** The `name=value` pairs of a response's Set-Cookie headers, as a Cookie header. */
function cookies(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
}
