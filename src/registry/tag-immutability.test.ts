/**
 * Immutability policies select tags through a matcher that stops pathological patterns: a pattern
 * too slow to run must fail closed (the tag is immutable), on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from '../db/connect.js';
import { ImmutabilityStore } from '../db/immutability-store.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import { PatternMatcher } from './autoprune/pattern-matcher.js';
import { ImmutabilityPolicies } from './tag-immutability.js';

for (const dialect of DIALECTS) {
  describe(`immutability policies select tags (${dialect})`, () => {
    let h: DatabaseHandle;
    let repo: { id: number; namespaceId: number; namespace: string; name: string };
    const who = { actor: { kind: 'system' as const, name: 'test' }, ip: '127.0.0.1', userAgent: 'test' };
    before(async () => {
      h = await openTestDatabase(dialect);
      const { id } = await new RepositoryStore(h.db, h.dialect).ensure('acme', 'team/app');
      const namespaceId = Number((await h.db.selectFrom('repositories').select('namespace_id').where('id', '=', id).executeTakeFirstOrThrow()).namespace_id);
      repo = { id, namespaceId, namespace: 'acme', name: 'team/app' };
    });
    after(async () => h.close());

    const policies = (matcher?: PatternMatcher) => new ImmutabilityPolicies({ store: new ImmutabilityStore(h.db), namespaces: new NamespaceStore(h.db, h.dialect), matcher });

    it('a pattern selects the tags it matches at their start', async () => {
      const p = policies();
      await p.create({ repository: repo }, { tagPattern: 'v[0-9]+', tagPatternMatches: true }, who);
      assert.equal(await p.selects(repo.id, 'v12'), true);
      assert.equal(await p.selects(repo.id, 'latest'), false);
      assert.equal(await p.selects(repo.id, 'x-v12'), false, 'matched at the start, as Quay');
    });

    it('a pattern stopped for taking too long makes the tag immutable (fails closed)', async () => {
      // Catastrophic backtracking: (a+)+$ against a long run of a's that does not end the string.
      const slow = policies(new PatternMatcher({ timeoutMs: 5 }));
      await slow.create({ repository: repo }, { tagPattern: '(a+)+$', tagPatternMatches: true }, who);
      const tag = `${'a'.repeat(40)}!`;
      assert.equal(await slow.selects(repo.id, tag), true);
    });
  });
}
