import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { AuditLogStore } from '../../db/audit-log-store.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { SigningKeyStore } from '../../db/signing-key-store.js';
import { ANONYMOUS } from '../access.js';
import { isAccountError } from './account-error.js';
import { AuditService } from './audit-service.js';
import { SigningKeyService } from './signing-key-service.js';

for (const dialect of DIALECTS) {
  describe(`audit log and signing keys (${dialect})`, () => {
    let h: DatabaseHandle;
    let audit: AuditService;
    let clock = 2_000_000_000_000;
    before(async () => {
      h = await openTestDatabase(dialect);
      audit = new AuditService(new AuditLogStore(h.db), { now: () => clock });
    });
    after(async () => h.close());

    const alice = { kind: 'user', id: 1, name: 'alice', superuser: false } as const;
    const robot = { kind: 'robot', id: 2, name: 'acme+ci', namespaceId: 3 } as const;

    it('records actor, address, agent, place and metadata, hiding secrets', async () => {
      await audit.record('create_robot', {
        actor: alice,
        ip: '192.0.2.7',
        userAgent: 'curl/8',
        namespace: 'acme',
        metadata: { robot: 'acme+ci', token: 'TOPSECRET', nested: { password: 'hunter2', list: [{ client_secret: 's' }] }, token_name: 'ci', absent: null },
      });
      const { entries, nextCursor } = await audit.query({ namespace: 'acme' });
      assert.equal(nextCursor, undefined);
      assert.equal(entries.length, 1);
      const e = entries[0]!;
      assert.deepEqual({ ...e, id: 0 }, {
        id: 0,
        kind: 'create_robot',
        namespace: 'acme',
        repository: null,
        actor: { kind: 'user', name: 'alice' },
        ip: '192.0.2.7',
        userAgent: 'curl/8',
        metadata: { robot: 'acme+ci', token: '********', nested: { password: '********', list: [{ client_secret: '********' }] }, token_name: 'ci', absent: null },
        createdAt: clock,
      });
      assert.ok(!JSON.stringify(await h.db.selectFrom('audit_log').selectAll().execute()).match(/TOPSECRET|hunter2/));
    });

    it('writes background entries in the order recorded; flush and query wait for them', async () => {
      const errors: unknown[] = [];
      const bg = { actor: alice, namespace: 'bg', repository: 'app' };
      audit.submit('pull_repo', { ...bg, metadata: { n: 1 } }, (err) => errors.push(err));
      await audit.record('push_repo', { ...bg, metadata: { n: 2 } });
      audit.submit('pull_repo', { ...bg, metadata: { n: 3 } }, (err) => errors.push(err));
      await audit.flush();
      const stored = await h.db.selectFrom('audit_log').select(['kind', 'metadata']).where('namespace', '=', 'bg').orderBy('id').execute();
      assert.deepEqual(stored.map((r) => [r.kind, r.metadata]), [['pull_repo', '{"n":1}'], ['push_repo', '{"n":2}'], ['pull_repo', '{"n":3}']]);
      audit.submit('pull_repo', { ...bg, metadata: { n: 4 } }, (err) => errors.push(err));
      const { entries } = await audit.query({ namespace: 'bg' });
      assert.deepEqual(entries.map((e) => e.metadata?.n), [4, 3, 2, 1]);
      assert.deepEqual(errors, []);
      assert.throws(() => audit.submit('Bad Kind', { actor: alice }, () => {}), /invalid audit log kind/);
    });

    it('reports a failed background write to its callback, and keeps writing later entries', async () => {
      let fail = true;
      const written: string[] = [];
      const store = {
        appendMany: async (entries: ReadonlyArray<{ kind: string }>) => {
          if (fail) throw new Error('disk full');
          written.push(...entries.map((e) => e.kind));
        },
      } as unknown as AuditLogStore;
      const flaky = new AuditService(store);
      const errors: string[] = [];
      flaky.submit('pull_repo', { actor: alice }, (err) => errors.push((err as Error).message));
      await flaky.flush();
      assert.deepEqual(errors, ['disk full']);
      await assert.rejects(flaky.record('push_repo', { actor: alice }), /disk full/);
      fail = false;
      flaky.submit('pull_repo', { actor: alice }, (err) => errors.push((err as Error).message));
      await flaky.record('push_repo', { actor: alice });
      assert.deepEqual(written, ['pull_repo', 'push_repo']);
      assert.deepEqual(errors, ['disk full']);
    });

    it('names anonymous, robot and system actors; refuses bad kinds and repository without namespace', async () => {
      await audit.record('pull_repo', { actor: ANONYMOUS, namespace: 'acme', repository: 'app' });
      await audit.record('push_repo', { actor: robot, namespace: 'acme', repository: 'app' });
      await audit.record('gc_run', { actor: { kind: 'system', name: 'gc' } });
      const { entries } = await audit.query({ namespace: 'acme', repository: 'app' });
      assert.deepEqual(entries.map((e) => [e.kind, e.actor.kind, e.actor.name]), [['push_repo', 'robot', 'acme+ci'], ['pull_repo', 'anonymous', null]]);
      await assert.rejects(audit.record('Bad Kind', { actor: alice }), /invalid audit log kind/);
      await assert.rejects(audit.record('push_repo', { actor: alice, repository: 'app' }), /must name its namespace/);
    });

    it('filters by namespace, repository, kinds and time, newest first, and pages with a cursor', async () => {
      const t0 = (clock = 2_100_000_000_000);
      const kinds = ['push_repo', 'pull_repo', 'delete_tag', 'push_repo', 'change_repo_permission', 'push_repo', 'pull_repo'];
      for (const [i, kind] of kinds.entries()) {
        clock = t0 + i * 1000;
        await audit.record(kind, { actor: alice, namespace: 'paged', repository: i % 2 ? 'odd' : 'even', metadata: { i } });
      }
      await audit.record('push_repo', { actor: alice, namespace: 'elsewhere', repository: 'even' });
      const order = (r: { entries: Array<{ metadata: Record<string, unknown> | null }> }) => r.entries.map((e) => e.metadata?.i);
      assert.deepEqual(order(await audit.query({ namespace: 'paged' })), [6, 5, 4, 3, 2, 1, 0]);
      assert.deepEqual(order(await audit.query({ namespace: 'paged', repository: 'even' })), [6, 4, 2, 0]);
      assert.deepEqual(order(await audit.query({ namespace: 'paged', kinds: ['push_repo'] })), [5, 3, 0]);
      assert.deepEqual(order(await audit.query({ namespace: 'paged', kinds: ['push_repo', 'delete_tag'] })), [5, 3, 2, 0]);
      assert.deepEqual(order(await audit.query({ namespace: 'paged', since: t0 + 2000, until: t0 + 5000 })), [4, 3, 2]);
      assert.deepEqual(order(await audit.query({ namespace: 'paged', repository: 'odd', since: t0 + 3000 })), [5, 3]);

      const seen: unknown[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await audit.query({ namespace: 'paged', limit: 3, cursor });
        seen.push(...order(page));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0]);
      assert.equal(pages, 3);
      const exact = await audit.query({ namespace: 'paged', kinds: ['pull_repo'], limit: 2 });
      assert.equal(exact.entries.length, 2);
      assert.equal(exact.nextCursor, undefined, 'a page that is exactly full has no next page');
      const short = await audit.query({ namespace: 'paged', kinds: ['pull_repo'], limit: 1 });
      assert.ok(short.nextCursor);
      assert.deepEqual(order(await audit.query({ namespace: 'paged', kinds: ['pull_repo'], limit: 1, cursor: short.nextCursor })), [1]);
      const everywhere = await audit.query({ kinds: ['push_repo'], since: t0 });
      assert.deepEqual(everywhere.entries.map((e) => e.namespace), ['elsewhere', 'paged', 'paged', 'paged']);
    });

    it('rejects bad queries with invalid_request', async () => {
      for (const q of [{ repository: 'x' }, { limit: 0 }, { limit: 501 }, { cursor: 'abc' }, { cursor: '-1' }, { since: Number.NaN }]) {
        await assert.rejects(audit.query(q), (err) => isAccountError(err) && err.type === 'invalid_request', JSON.stringify(q));
      }
    });

    it('makes a signing key on first use; racing first starts converge, and every stored key verifies', async () => {
      const keys = new SigningKeyService(new SigningKeyStore(h.db));
      let made = 0;
      const generate = async () => ({ kid: `kid-${++made}`, algorithm: 'ES256', privateJwk: `{"d":"${made}"}` });
      const racing = await Promise.all([keys.current(generate), keys.current(generate), keys.current(generate)]);
      for (const k of racing) assert.deepEqual(await keys.find(k.kid), k, 'whatever a racer signs with verifies');
      const settled = await keys.current(generate);
      const generatedBefore = made;
      assert.deepEqual(await Promise.all([keys.current(generate), keys.current(generate)]), [settled, settled]);
      assert.equal(made, generatedBefore, 'no new key once one exists');
      assert.equal((await keys.list()).length, made);
      await new Promise((r) => setTimeout(r, 5));
      await keys.add({ kid: 'rotated', algorithm: 'ES256', privateJwk: '{}' });
      assert.equal((await keys.current(generate)).kid, 'rotated');
      assert.equal((await keys.list())[0]?.kid, 'rotated');
    });
  });
}
