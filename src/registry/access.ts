/**
 * The one question every `/v2` handler asks before it acts: may this caller do these actions on this
 * repository? `OpenAccess` allows all; `PermissionAccess` (accounts/) answers from users, teams, robots
 * and repository permissions.
 */
import type { RepositoryName } from '../oci/reference.js';

export type RepositoryAction = 'pull' | 'push' | 'delete';

/**
 * Who is calling, as established by authentication at the edge. Ids are database ids; every decision
 * re-reads the account (enabled, superuser, still existing), so a principal held in a token cannot
 * outlive a disabled or deleted account.
 *
 * `tokenScopes` is set when a user authenticated with an API token: the token's scopes then cap what the
 * user may do (`repo:read` → at most read, and so on; see `accounts/api-scopes.ts`).
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; id: number; name: string; superuser: boolean; tokenScopes?: readonly string[] }
  /** `name` is the full robot name, `<namespace>+<short>`. */
  | { kind: 'robot'; id: number; name: string; namespaceId: number };

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });

export interface AccessService {
  /** Resolves if `principal` may perform every action on `repository`; throws UNAUTHORIZED or DENIED otherwise. */
  authorize(principal: Principal, repository: RepositoryName, actions: readonly RepositoryAction[]): Promise<void>;
  /** Whether `principal` may list `repository` in the catalog (no error). */
  canSee(principal: Principal, repository: string): Promise<boolean>;
  /** Full names `principal` can read, in byte order, after `last`, at most `limit` (the catalog); when absent, callers filter with canSee. */
  listReadable?(principal: Principal, opts: { last?: string; limit: number }): Promise<string[]>;
}

/** An access service that also answers the token endpoint's question: which of the requested actions to grant. */
export interface GrantingAccess extends AccessService {
  grant(principal: Principal, repository: RepositoryName, requested: readonly RepositoryAction[]): Promise<RepositoryAction[]>;
}

/** Everyone may do everything: the registry runs open. */
export class OpenAccess implements GrantingAccess {
  async authorize(): Promise<void> {}
  async grant(_principal: Principal, _repository: RepositoryName, requested: readonly RepositoryAction[]): Promise<RepositoryAction[]> {
    return [...requested];
  }
  async canSee(): Promise<boolean> {
    return true;
  }
}
