/**
 * The AccessService a `/v2` request sees when accounts are on: the registry's own policy, capped by the
 * `access` claim of the caller's bearer token when there is one.
 *
 * Every refusal for lack of rights becomes a 401 (code UNAUTHORIZED or DENIED, with distribution's
 * detail naming the refused access), so that the HTTP layer answers with a `WWW-Authenticate` challenge from which clients
 * learn the realm and the scope to ask for. An action the token does not carry is UNAUTHORIZED; the
 * catalog needs `registry:catalog:*` in a token. A refusal by the repository's state (read-only, mirror)
 * stays a 403 DENIED with its reason.
 */
import { RegistryError } from '../../oci/errors.js';
import type { RepositoryName } from '../../oci/reference.js';
import type { AccessService, Principal, RepositoryAction } from '../access.js';
import { isStateRefusal } from './permission-access.js';
import type { TokenAccess } from './registry-tokens.js';

export class ScopedAccess implements AccessService {
  constructor(
    private readonly inner: AccessService,
    /** The bearer token's access claim; undefined when the caller used Basic or no credentials. */
    private readonly cap?: readonly TokenAccess[],
  ) {}

  async authorize(principal: Principal, repository: RepositoryName, actions: readonly RepositoryAction[]): Promise<void> {
    if (this.cap) {
      const granted = new Set(this.cap.filter((a) => a.type === 'repository' && a.name === repository).flatMap((a) => expand(a.actions)));
      if (!actions.every((a) => granted.has(a))) {
        throw new RegistryError('UNAUTHORIZED', `the token does not grant ${actions.join(',')} on ${repository}`, actions.map((Action) => ({ Type: 'repository', Name: repository, Action })), 401);
      }
    }
    try {
      await this.inner.authorize(principal, repository, actions);
    } catch (err) {
      // The repository's state refuses with 403 and its reason: new credentials would not help.
      if (isStateRefusal(err)) throw err;
      if (err instanceof RegistryError && (err.code === 'UNAUTHORIZED' || err.code === 'DENIED') && err.status !== 401) {
        throw new RegistryError(err.code, err.message, err.detail, 401).withHeaders(err.headers);
      }
      throw err;
    }
  }

  canSee(principal: Principal, repository: string): Promise<boolean> {
    return this.inner.canSee(principal, repository);
  }

  async listReadable(principal: Principal, opts: { last?: string; limit: number }): Promise<string[]> {
    if (this.cap && !this.cap.some((a) => a.type === 'registry' && a.name === 'catalog' && a.actions.includes('*'))) {
      throw new RegistryError('UNAUTHORIZED', 'the token does not grant registry:catalog:*', [{ Type: 'registry', Name: 'catalog', Action: '*' }], 401);
    }
    if (this.inner.listReadable) return this.inner.listReadable(principal, opts);
    throw new Error('the access service cannot list readable repositories');
  }
}

/** `*` in a repository scope means every action (distribution's token spec). */
export function expand(actions: readonly string[]): RepositoryAction[] {
  const all: RepositoryAction[] = ['pull', 'push', 'delete'];
  return actions.includes('*') ? all : all.filter((a) => actions.includes(a));
}
