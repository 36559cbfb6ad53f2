/** Builds the account stores over the database and the account services over them (registry/accounts/accounts.ts). */
import type { Kysely } from 'kysely';
import { ApiTokenStore } from '../db/api-token-store.js';
import { AuditLogStore } from '../db/audit-log-store.js';
import { DefaultPermissionStore } from '../db/default-permission-store.js';
import { EntitySearchStore } from '../db/entity-search-store.js';
import { GlobalMessageStore } from '../db/global-message-store.js';
import { RobotFederationStore } from '../db/robot-federation-store.js';
import { StarStore } from '../db/star-store.js';
import type { DialectAdapter } from '../db/dialect.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { OAuthApplicationStore } from '../db/oauth-application-store.js';
import { OrganizationStore } from '../db/organization-store.js';
import { PermissionStore } from '../db/permission-store.js';
import { RobotStore } from '../db/robot-store.js';
import { SessionStore } from '../db/session-store.js';
import { SigningKeyStore } from '../db/signing-key-store.js';
import type { Database } from '../db/tables.js';
import { TeamStore } from '../db/team-store.js';
import { UserStore } from '../db/user-store.js';
import { wireAccounts, type Accounts, type AccountsOptions, type AccountsStores } from '../registry/accounts/accounts.js';
import type { RepositoryService } from '../registry/repositories.js';

/** Every account store over one database. */
export function accountStores(db: Kysely<Database>, dialect: DialectAdapter): AccountsStores {
  return {
    namespaces: new NamespaceStore(db, dialect),
    users: new UserStore(db, dialect),
    organizations: new OrganizationStore(db, dialect),
    teams: new TeamStore(db, dialect),
    robots: new RobotStore(db, dialect),
    permissions: new PermissionStore(db, dialect),
    defaults: new DefaultPermissionStore(db),
    apiTokens: new ApiTokenStore(db),
    sessions: new SessionStore(db),
    oauthApplications: new OAuthApplicationStore(db, dialect),
    auditLog: new AuditLogStore(db),
    signingKeys: new SigningKeyStore(db),
    entitySearch: new EntitySearchStore(db),
    stars: new StarStore(db, dialect),
    messages: new GlobalMessageStore(db),
    federations: new RobotFederationStore(db),
  };
}

/** The account services over one database; `repositories` is the registry's repository service. */
export function createAccounts(db: Kysely<Database>, dialect: DialectAdapter, repositories: RepositoryService, opts: AccountsOptions = {}): Accounts {
  return wireAccounts(accountStores(db, dialect), repositories, opts);
}
