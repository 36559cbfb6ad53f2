/**
 * Wires the account services over one database, for the composition root (which still chooses the
 * database, the dialect and the repository service) and for tests. Nothing here picks an implementation.
 */
import type { Kysely } from 'kysely';
import { ApiTokenStore } from '../../db/api-token-store.js';
import { AuditLogStore } from '../../db/audit-log-store.js';
import { DefaultPermissionStore } from '../../db/default-permission-store.js';
import type { DialectAdapter } from '../../db/dialect.js';
import { NamespaceStore } from '../../db/namespace-store.js';
import { OrganizationStore } from '../../db/organization-store.js';
import { PermissionStore } from '../../db/permission-store.js';
import { RobotStore } from '../../db/robot-store.js';
import { SigningKeyStore } from '../../db/signing-key-store.js';
import type { Database } from '../../db/tables.js';
import { TeamStore } from '../../db/team-store.js';
import { UserStore } from '../../db/user-store.js';
import type { RepositoryService, Visibility } from '../repositories.js';
import { AccountService } from './account-service.js';
import { ApiTokenService } from './api-token-service.js';
import { AuditService } from './audit-service.js';
import { Authenticator } from './authenticator.js';
import { GrantService } from './grant-service.js';
import { PermissionAccess } from './permission-access.js';
import { PermissionService } from './permission-service.js';
import { RobotService } from './robot-service.js';
import { SigningKeyService } from './signing-key-service.js';
import { TeamService } from './team-service.js';

export interface Accounts {
  accounts: AccountService;
  teams: TeamService;
  robots: RobotService;
  apiTokens: ApiTokenService;
  authenticator: Authenticator;
  permissions: PermissionService;
  grants: GrantService;
  /** The AccessService to give the registry. */
  access: PermissionAccess;
  audit: AuditService;
  signingKeys: SigningKeyService;
}

export interface AccountsOptions {
  /** Visibility of repositories created by a push (default private). */
  defaultVisibility?: Visibility;
  /** The clock for token expiry and audit times (tests move it). */
  now?: () => number;
}

export function createAccounts(db: Kysely<Database>, dialect: DialectAdapter, repositories: RepositoryService, opts: AccountsOptions = {}): Accounts {
  const stores = {
    namespaces: new NamespaceStore(db, dialect),
    users: new UserStore(db, dialect),
    organizations: new OrganizationStore(db, dialect),
    teams: new TeamStore(db, dialect),
    robots: new RobotStore(db, dialect),
    permissions: new PermissionStore(db, dialect),
    defaults: new DefaultPermissionStore(db),
    apiTokens: new ApiTokenStore(db),
  };
  const accounts = new AccountService(stores);
  const robots = new RobotService(stores);
  const apiTokens = new ApiTokenService(stores, { now: opts.now });
  const permissions = new PermissionService(stores);
  const audit = new AuditService(new AuditLogStore(db), { now: opts.now });
  return {
    accounts,
    teams: new TeamService(stores),
    robots,
    apiTokens,
    authenticator: new Authenticator({ accounts, robots, apiTokens }, stores),
    permissions,
    grants: new GrantService(stores),
    access: new PermissionAccess(repositories, permissions, {
      defaultVisibility: opts.defaultVisibility,
      createOrganization: async (name, creator) => {
        await accounts.createOrganization({ name, creator: creator.name });
        await audit.record('org_create', { actor: creator, namespace: name, metadata: { via: 'push' } });
      },
      recordCreation: (kind, actor, where) => audit.record(kind, { actor, ...where }),
    }),
    audit,
    signingKeys: new SigningKeyService(new SigningKeyStore(db)),
  };
}
