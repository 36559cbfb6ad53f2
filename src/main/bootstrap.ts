/**
 * First start: with an empty users table, create the superuser (`auth.admin_username`) with the
 * configured password or a random one. A generated password is printed once to stdout as a plain-text
 * block (never logged); only its scrypt hash is stored.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { AccountError } from '../registry/accounts/account-error.js';
import type { Accounts } from '../registry/accounts/accounts.js';
import { randomSecret } from '../registry/accounts/passwords.js';

/** Creates the first superuser if there are no users; returns the password only when it was generated. */
export async function bootstrapAdmin(accounts: Accounts, config: Readonly<Config>): Promise<{ username: string; password?: string } | undefined> {
  if ((await accounts.accounts.countUsers()) > 0) return undefined;
  const username = config.auth.admin_username;
  const generated = config.auth.admin_password === undefined ? randomSecret() : undefined;
  try {
    await accounts.accounts.createUser({ name: username, password: generated ?? config.auth.admin_password, superuser: true });
  } catch (err) {
    // Another replica starting at the same time created it first.
    if (err instanceof AccountError && err.type === 'conflict') return undefined;
    throw err;
  }
  await accounts.audit.record('user_create', { actor: { kind: 'system', name: 'bootstrap' }, namespace: username, metadata: { superuser: true } });
  return { username, password: generated };
}

/** The block printed once on first start. */
export function adminBanner(url: string, username: string, password: string): string {
  const rule = '='.repeat(72);
  return [
    '',
    rule,
    'Wharf created its first user, a superuser. This password is shown only this once:',
    '',
    `  URL:       ${url}`,
    `  Username:  ${username}`,
    `  Password:  ${password}`,
    '',
    `Log in with:  skopeo login ${new URL(url).host} --username ${username}`,
    'Change it with:  wharf user passwd ' + username + ' --password-stdin',
    rule,
    '',
    '',
  ].join('\n');
}
