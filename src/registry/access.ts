/**
 * The one question every `/v2` handler asks before it acts: may this caller do these actions on this
 * repository? Accounts and tokens plug in behind this interface; until then `OpenAccess` allows all.
 */
import type { RepositoryName } from '../oci/reference.js';

export type RepositoryAction = 'pull' | 'push' | 'delete';

export type Principal = { kind: 'anonymous' } | { kind: 'user'; name: string };

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });

export interface AccessService {
  /** Resolves if `principal` may perform every action on `repository`; throws UNAUTHORIZED or DENIED otherwise. */
  authorize(principal: Principal, repository: RepositoryName, actions: readonly RepositoryAction[]): Promise<void>;
  /** Whether `principal` may list `repository` in the catalog (no error). */
  canSee(principal: Principal, repository: string): Promise<boolean>;
}

/** Everyone may do everything: the registry runs open. */
export class OpenAccess implements AccessService {
  async authorize(): Promise<void> {}
  async canSee(): Promise<boolean> {
    return true;
  }
}
