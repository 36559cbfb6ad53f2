/**
 * A Wharf app for replaying the Quay collection's modules (quay-module-calls.ts): superuser `admin`,
 * and `module(user)`, a fresh module run (the collection starts a process per task) that authenticates
 * with an API token of that user holding every scope, as `quay_token` does.
 */
import { API_SCOPES } from '../../src/registry/accounts/api-scopes.js';
import type { Accounts } from '../../src/registry/accounts/accounts.js';
import { buildTestApp, type TestApp } from './app.js';
import type { TestDialect } from './databases.js';
import { QuayModuleCalls } from './quay-module-calls.js';

export interface QuayCollectionWorld {
  t: TestApp;
  a: Accounts;
  /** A new module run as `user` (default `admin`, the superuser). */
  module(user?: string): Promise<QuayModuleCalls>;
}

export async function buildQuayCollectionWorld(dialect: TestDialect): Promise<QuayCollectionWorld> {
  const t = await buildTestApp(dialect);
  const a = t.accounts!;
  await a.accounts.createUser({ name: 'admin', password: 'admin-password-1', superuser: true });
  const tokens = new Map<string, string>();
  return {
    t,
    a,
    async module(user = 'admin') {
      let secret = tokens.get(user);
      if (!secret) {
        secret = (await a.apiTokens.create(user, { name: 'ansible', scopes: [...API_SCOPES] })).secret;
        tokens.set(user, secret);
      }
      return new QuayModuleCalls(() => t.app, `Bearer ${secret}`);
    },
  };
}
