/**
 * Fuzzing the registry with malformed requests, on SQLite and PostgreSQL: the fixed corpus of inputs
 * that once failed (corpus.ts), then thousands of generated `/v2` and `/api/v1` requests through
 * `inject`, then generated requests with broken framing on a socket. Every answer must be a 4xx or
 * better in the error shape of its API, no log line may be at error level or carry a stack trace, and
 * the registry must still push and pull afterwards.
 *
 * Reproducible: the run prints its seed; `WHARF_FUZZ_SEED=<seed>` runs the same requests again
 * (`WHARF_FUZZ_SEED=random` a new sequence), `WHARF_FUZZ_SCALE=4` four times as many.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { waitFor } from '../helpers/e2e-utils.js';
import { pushImage } from '../helpers/inject-client.js';
import { corpus } from './corpus.js';
import { framedRequest } from './framing.js';
import { sendRaw, type Answer, type RawRequest } from '../helpers/raw-http.js';
import { apiRequest, v2Request } from './requests.js';
import { fuzzSeed, Rng } from './rng.js';
import { FuzzWorld, type Sent } from './world.js';

const SEED = fuzzSeed(0x5eed_0011);
const SCALE = Number(process.env.WHARF_FUZZ_SCALE ?? 1) || 1;
const COUNTS = { v2: Math.round(1600 * SCALE), api: Math.round(1000 * SCALE), raw: Math.round(300 * SCALE) };

/** Every request sent, by its `X-Request-Id`: a log line written late still names its request. */
const described = new Map<string, string>();

/** Sends requests one at a time, tags each with an `X-Request-Id`, and collects what went wrong. */
class Campaign {
  private readonly problems: string[] = [];
  private sent = 0;
  /** Requests `inject` itself refused to build (not the server's doing). */
  unsendable = 0;

  constructor(
    readonly w: FuzzWorld,
    private readonly prefix: string,
  ) {}

  async inject(sent: Sent, label?: string): Promise<Answer | undefined> {
    const id = this.nextId(label ?? summary(sent.method, sent.url, sent.body));
    const withId = { ...sent, headers: { ...sent.headers, 'x-request-id': id } };
    let answer: Answer;
    try {
      answer = await this.w.inject(withId);
    } catch {
      this.unsendable++;
      return undefined;
    }
    this.w.learn(sent, answer);
    this.record(id, this.w.check(sent, answer));
    return answer;
  }

  async raw(make: (id: string) => RawRequest, label?: string): Promise<void> {
    const id = `${this.prefix}-${this.sent + 1}`;
    const req = make(id);
    this.nextId(label ?? `${summary(req.method, req.path, undefined)} [raw ${req.then ?? 'end'}: ${JSON.stringify(Buffer.from(req.bytes).toString('latin1').slice(0, 160))}]`);
    const answer = await sendRaw(this.w.port, req);
    this.record(id, this.w.check({ method: req.method, url: req.path }, answer));
  }

  /** Waits for the server to finish with every connection, then checks the log lines of the whole campaign. */
  async finish(t: TestContext): Promise<void> {
    // Requests whose client hung up may still be running: wait for the sockets to close and the log
    // to go quiet (a line later than that is still checked, by the last test, and names its request).
    await waitFor('the server to close every connection', async () => (await connections(this.w)) === 0, 10_000).catch(() => {});
    let seen = -1;
    await waitFor('the log to go quiet', () => seen === (seen = this.w.logs.length), 5000, 200).catch(() => {});
    for (const line of this.w.badLogs()) {
      const id = /"reqId":"([^"]+)"/.exec(line)?.[1];
      this.problems.push(`${id && described.has(id) ? described.get(id) : `(no request: ${id ?? 'before routing'})`}\n    ${line}`);
    }
    this.w.logs.length = 0;
    t.diagnostic(`seed ${SEED}: ${this.sent} requests${this.unsendable ? `, ${this.unsendable} that inject could not build` : ''}`);
    if (this.problems.length) {
      // The same fault usually shows up many times: two examples of each kind, the kinds first.
      const kinds = new Map<string, string[]>();
      for (const p of this.problems) {
        const detail = p.split('\n    ')[1]!;
        const kind = `${detail.slice(0, 36)} ${/FST_ERR_[A-Z_]+|"message":"[^"]{0,80}/.exec(detail)?.[0] ?? ''}`;
        kinds.set(kind, [...(kinds.get(kind) ?? []), p]);
      }
      const shown = [...kinds.values()].map((list) => `${list.length}×\n  ${list.slice(0, 2).join('\n  ')}`).join('\n  ');
      assert.fail(`${this.problems.length} problems of ${kinds.size} kinds (seed ${SEED}; rerun with WHARF_FUZZ_SEED=${SEED}):\n  ${shown}`);
    }
  }

  private nextId(description: string): string {
    const id = `${this.prefix}-${++this.sent}`;
    described.set(id, `#${id} ${description}`);
    return id;
  }

  private record(id: string, problems: string[]): void {
    for (const p of problems) this.problems.push(`${described.get(id)}\n    ${p}`);
  }
}

function summary(method: string, url: string, body: Buffer | string | undefined): string {
  const text = body === undefined ? '' : ` body ${JSON.stringify(Buffer.from(body).toString('latin1').slice(0, 160))}`;
  return `${method} ${url.slice(0, 240)}${text}`;
}

function connections(w: FuzzWorld): Promise<number> {
  return new Promise((resolve) => w.t.app.server.getConnections((_err, n) => resolve(n ?? 0)));
}

for (const dialect of DIALECTS) {
  describe(`fuzz: malformed requests (${dialect})`, () => {
    let w: FuzzWorld;
    before(async () => {
      w = await FuzzWorld.start(dialect);
    });
    after(async () => w.close());

    it('answers the corpus of inputs that once failed', async (t) => {
      const c = new Campaign(w, 'corpus');
      for (const fixed of await corpus(w)) {
        if (fixed.inject) await c.inject(fixed.inject, fixed.label);
        if (fixed.raw) await c.raw(fixed.raw, fixed.label);
      }
      await c.finish(t);
    });

    it(`answers ${COUNTS.v2} generated /v2 requests`, async (t) => {
      const r = new Rng(SEED);
      const c = new Campaign(w, 'v2');
      for (let i = 0; i < COUNTS.v2; i++) await c.inject(v2Request(r, w));
      await c.finish(t);
    });

    it(`answers ${COUNTS.api} generated /api/v1 requests`, async (t) => {
      const r = new Rng(SEED ^ 0xa91);
      await w.prepareApiTarget();
      const c = new Campaign(w, 'api');
      for (let i = 0; i < COUNTS.api; i++) await c.inject(apiRequest(r, w));
      await c.finish(t);
    });

    it(`answers ${COUNTS.raw} generated requests with broken framing`, async (t) => {
      const r = new Rng(SEED ^ 0xf4a);
      const c = new Campaign(w, 'raw');
      for (let i = 0; i < COUNTS.raw; i++) await c.raw((id) => framedRequest(r, w, id));
      await c.finish(t);
    });

    it('still serves pushes, pulls and the API afterwards', async () => {
      const base = `http://127.0.0.1:${w.port}`;
      const headers = { authorization: w.auth.root };
      let res = await fetch(`${base}/v2/`, { headers });
      assert.equal(res.status, 200, await res.text());
      // In an organization the requests never named: they may have given fz a tiny quota, a
      // read-only state or immutable tags, all of which are answers, not breakage.
      await w.t.accounts!.accounts.createOrganization({ name: 'fzafter', creator: 'root' });
      const pushed = await pushImage(w.asRoot(), 'fzafter/after/fuzz', 'ok', 'after');
      res = await fetch(`${base}/v2/fzafter/after/fuzz/manifests/ok`, { headers: { ...headers, accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), pushed.digest);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), pushed.body);
      res = await fetch(`${base}/api/v1/user/`, { headers });
      assert.equal(res.status, 200, await res.text());
      assert.deepEqual(w.badLogs(), []);
    });
  });
}
