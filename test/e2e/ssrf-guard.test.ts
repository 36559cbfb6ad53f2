/**
 * A loopback upstream (a real Distribution registry on 127.0.0.1) refused by the SSRF guard, as an
 * operator meets it: the API's 400, the CLI's error, the 503 a pulling client gets and the log line all
 * name the setting that allows it, `proxy_cache.allow_private_upstreams`; and `wharf proxycache set` run
 * with another allowlist than the running server's fails, saying which side refuses, instead of
 * storing an upstream the server will not dial.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { waitFor } from '../helpers/e2e-utils.js';
import { runWharf } from '../helpers/wharf-cli.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const SETTING = /proxy_cache\.allow_private_upstreams/;
const ALLOW = { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1' };
const NO_ALLOW = { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: undefined };

describe('SSRF guard: a loopback upstream', () => {
  let upstream: DistributionProcess;
  let dataDir: string;
  before(async () => {
    upstream = await startDistribution();
    dataDir = await mkdtemp(join(tmpdir(), 'wharf-ssrf-'));
  });
  after(async () => {
    await upstream?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const api = async (w: WharfProcess, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${w.url}/api/v1${path}`, {
      method,
      headers: { authorization: basicAuth(w.admin), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, text: await res.text() };
  };
  const cli = (args: string[], env: Record<string, string | undefined>) => runWharf(dataDir, args, { env, timeoutMs: 60_000 });

  it('configured while allowed, refused after a restart without the setting: the pull gets 503 naming the setting', async () => {
    const allowed = await startWharf({ dataDir, organizations: ['hub', 'other'], env: ALLOW });
    try {
      const created = await api(allowed, 'POST', '/organization/hub/proxycache', { upstream_registry: upstream.host, insecure: true });
      assert.equal(created.status, 201, created.text);
    } finally {
      await allowed.stop({ keepData: true });
    }

    const strict = await startWharf({ dataDir, organizations: [], env: NO_ALLOW });
    try {
      const res = await fetch(`${strict.url}/v2/hub/library/app/manifests/latest`, { headers: { authorization: basicAuth(strict.admin) } });
      assert.equal(res.status, 503);
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]?.code, 'UNAVAILABLE');
      assert.match(body.errors[0]!.message, SETTING);
      assert.match(body.errors[0]!.message, /127\.0\.0\.1/);

      // The operator finds the same reason in the log (one JSON object per line).
      await waitFor('the warning in the log', () => strict.stdout().includes('registry unavailable'));
      const line = strict.stdout().split('\n').find((l) => l.includes('registry unavailable'))!;
      const entry = JSON.parse(line) as { level: number; msg: string; reason: string; status: number };
      assert.equal(entry.level, 40);
      assert.equal(entry.msg, 'registry unavailable');
      assert.equal(entry.status, 503);
      assert.match(entry.reason, SETTING);

      // The API refuses to configure it, naming the setting.
      const refused = await api(strict, 'POST', '/organization/other/proxycache', { upstream_registry: upstream.host, insecure: true });
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.text, SETTING);

      // The CLI without the setting: refused, naming it.
      const plain = await cli(['proxycache', 'set', 'other', '--upstream', upstream.host, '--insecure'], NO_ALLOW);
      assert.equal(plain.code, 2, plain.stderr);
      assert.match(plain.stderr, SETTING);

      // The CLI with the setting while the running server has it off: an error, not a silent success.
      const mismatch = await cli(['proxycache', 'set', 'other', '--upstream', upstream.host, '--insecure'], ALLOW);
      assert.equal(mismatch.code, 2, `stored an upstream the running server refuses:\n${mismatch.stderr}`);
      assert.match(mismatch.stderr, /the running server would refuse it/);
      assert.match(mismatch.stderr, SETTING);
      const listed = await cli(['proxycache', 'list'], ALLOW);
      assert.doesNotMatch(listed.stdout, /^other\s/m, 'nothing was stored');
    } finally {
      await strict.stop({ keepData: true });
    }
  });

  it('a CLI without the setting the running server has says so; with the same setting it succeeds', async () => {
    const allowed = await startWharf({ dataDir, organizations: [], env: ALLOW });
    try {
      const refused = await cli(['proxycache', 'set', 'other', '--upstream', upstream.host, '--insecure'], NO_ALLOW);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, SETTING);
      assert.match(refused.stderr, /the running server allows it/);

      const same = await cli(['proxycache', 'set', 'other', '--upstream', upstream.host, '--insecure'], ALLOW);
      assert.equal(same.code, 0, same.stderr);
      const res = await fetch(`${allowed.url}/v2/other/library/app/manifests/latest`, { headers: { authorization: basicAuth(allowed.admin) } });
      await res.arrayBuffer();
      assert.equal(res.status, 404, 'the server dials the upstream, which has no such image');
    } finally {
      await allowed.stop({ keepData: true });
    }
  });
});
