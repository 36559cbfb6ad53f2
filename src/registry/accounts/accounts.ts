/**
 * Wires the account services together over the stores the composition root built
 * (main/compose-accounts.ts). Nothing here picks or builds an implementation.
 */
import type { ApiTokenStore } from '../../db/api-token-store.js';
import type { AuditLogStore } from '../../db/audit-log-store.js';
import type { DefaultPermissionStore } from '../../db/default-permission-store.js';
import type { EntitySearchStore } from '../../db/entity-search-store.js';
import type { GlobalMessageStore } from '../../db/global-message-store.js';
import type { RobotFederationStore } from '../../db/robot-federation-store.js';
import type { StarStore } from '../../db/star-store.js';
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { OAuthApplicationStore } from '../../db/oauth-application-store.js';
import type { OrganizationStore } from '../../db/organization-store.js';
import type { PermissionStore } from '../../db/permission-store.js';
import type { RobotStore } from '../../db/robot-store.js';
import type { SessionStore } from '../../db/session-store.js';
import type { SigningKeyStore } from '../../db/signing-key-store.js';
import type { TeamStore } from '../../db/team-store.js';
import type { UserStore } from '../../db/user-store.js';
import type { SecretBox } from '../proxy/secret-box.js';
import type { RepositoryService, Visibility } from '../repositories.js';
import { AccountService } from './account-service.js';
import { ApiTokenService } from './api-token-service.js';
import { AppTokenService } from './app-token-service.js';
import { AuditService } from './audit-service.js';
import { Authenticator } from './authenticator.js';
import { EntitySearch } from './entity-search.js';
import { MessageService } from './message-service.js';
import { StarService } from './star-service.js';
import { GrantService } from './grant-service.js';
import { OAuthApplicationService } from './oauth-application-service.js';
import { PermissionAccess } from './permission-access.js';
import { PermissionService } from './permission-service.js';
import { RobotService } from './robot-service.js';
import { SessionService } from './session-service.js';
import { SigningKeyService } from './signing-key-service.js';
import { TeamService } from './team-service.js';

export interface Accounts {
  accounts: AccountService;
  teams: TeamService;
  robots: RobotService;
  apiTokens: ApiTokenService;
  /** App-specific tokens (Quay's): passwords for registry clients. */
  appTokens: AppTokenService;
  /** Signed-in sessions of `/api/v1/signin`. */
  sessions: SessionService;
  /** OAuth applications of organizations and the tokens granted through them. */
  oauthApplications: OAuthApplicationService;
  authenticator: Authenticator;
  permissions: PermissionService;
  grants: GrantService;
  /** The AccessService to give the registry. */
  access: PermissionAccess;
  audit: AuditService;
  signingKeys: SigningKeyService;
  /** Users, robots, teams and organizations by name prefix (Quay's entity lookup). */
  entities: EntitySearch;
  stars: StarService;
  messages: MessageService;
}

export interface AccountsOptions {
  /** Visibility of repositories created by a push (default private). */
  defaultVisibility?: Visibility;
  /** The clock for token expiry and audit times (tests move it). */
  now?: () => number;
  /** Hears of every password set (by name), after it is stored. */
  onPasswordSet?: (name: string) => void;
  /** The registry's secret box: robot tokens are kept sealed with it so that administrators can read them again. */
  secrets?: () => Promise<SecretBox>;
  /** A session unused this long ends (default 12 hours). */
  sessionIdleMs?: number;
  /** A session ends this long after sign-in (default 7 days). */
  sessionMaxAgeMs?: number;
  /** Lifetime of new app-specific tokens (default: they do not expire). */
  appTokenLifetimeMs?: number;
  /** The first user is created through `createFirstUser` (`auth.user_initialize`), not by the first start. */
  userInitialize?: boolean;
}

/** Every store the account services use. */
export interface AccountsStores {
  namespaces: NamespaceStore;
  users: UserStore;
  organizations: OrganizationStore;
  teams: TeamStore;
  robots: RobotStore;
  permissions: PermissionStore;
  defaults: DefaultPermissionStore;
  apiTokens: ApiTokenStore;
  sessions: SessionStore;
  oauthApplications: OAuthApplicationStore;
  auditLog: AuditLogStore;
  signingKeys: SigningKeyStore;
  entitySearch: EntitySearchStore;
  stars: StarStore;
  messages: GlobalMessageStore;
  federations: RobotFederationStore;
}

/** The account services over `stores`; `repositories` is the registry's repository service. */
export function wireAccounts(stores: AccountsStores, repositories: RepositoryService, opts: AccountsOptions = {}): Accounts {
  const accounts = new AccountService(stores, { onPasswordSet: opts.onPasswordSet, userInitialize: opts.userInitialize });
  const robots = new RobotService(stores, { secrets: opts.secrets });
  const apiTokens = new ApiTokenService(stores, { now: opts.now });
  const permissions = new PermissionService(stores);
  const audit = new AuditService(stores.auditLog, { now: opts.now });
  return {
    accounts,
    teams: new TeamService(stores),
    robots,
    apiTokens,
    appTokens: new AppTokenService(stores, { lifetimeMs: opts.appTokenLifetimeMs, now: opts.now }),
    oauthApplications: new OAuthApplicationService(stores, apiTokens, { now: opts.now }),
    sessions: new SessionService(stores, { idleMs: opts.sessionIdleMs ?? 12 * 3_600_000, maxAgeMs: opts.sessionMaxAgeMs ?? 7 * 86_400_000, now: opts.now }),
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
    signingKeys: new SigningKeyService(stores.signingKeys),
    entities: new EntitySearch(stores, permissions),
    stars: new StarService(stores.stars),
    messages: new MessageService(stores.messages),
  };
}
