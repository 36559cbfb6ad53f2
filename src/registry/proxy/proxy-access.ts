/**
 * Access to proxy organizations, in front of the registry's own policy.
 *
 *   pull         members of the organization (any team), its robots and superusers pull through and fill
 *                the cache (as in Quay); anyone when the organization allows `anonymous_pull` (nodes);
 *                otherwise whatever the registry's permissions say about an existing repository.
 *   push/delete  refused with 403 DENIED and the reason: the organization mirrors its upstream. Granted
 *                in tokens to those who could otherwise write, so that the reason reaches them.
 */
import { RegistryError } from '../../oci/errors.js';
import { splitRepositoryName, type RepositoryName } from '../../oci/reference.js';
import type { GrantingAccess, Principal, RepositoryAction } from '../access.js';
import { stateRefusal } from '../accounts/permission-access.js';
import type { ProxyDirectory } from './proxy-directory.js';

export class ProxyAccess implements GrantingAccess {
  /** The catalog: the registry's own (cached repositories are ordinary repositories there). */
  readonly listReadable?: (principal: Principal, opts: { last?: string; limit: number }) => Promise<string[]>;

  constructor(
    private readonly inner: GrantingAccess,
    private readonly proxy: Pick<ProxyDirectory, 'target'>,
    private readonly membership: {
      /** Whether the principal is a superuser or belongs to the organization (team member or its robot). */
      pullsThrough(principal: Principal, organizationId: number): Promise<boolean>;
    },
  ) {
    const list = inner.listReadable?.bind(inner);
    if (list) this.listReadable = list;
  }

  async authorize(principal: Principal, repository: RepositoryName, actions: readonly RepositoryAction[]): Promise<void> {
    const target = await this.proxy.target(repository);
    if (!target) return this.inner.authorize(principal, repository, actions);
    const writes = actions.filter((a) => a !== 'pull');
    if (writes.length) {
      // Those who may not even read learn nothing more than the registry's own refusal.
      await this.authorizePull(principal, repository, target.upstream.config);
      throw stateRefusal(
        new RegistryError('DENIED', `${splitRepositoryName(repository).namespace} is a proxy cache of ${target.upstream.config.upstreamRegistry}: pushes and deletes are not supported`, undefined, 403),
      );
    }
    await this.authorizePull(principal, repository, target.upstream.config);
  }

  async grant(principal: Principal, repository: RepositoryName, requested: readonly RepositoryAction[]): Promise<RepositoryAction[]> {
    const target = await this.proxy.target(repository);
    if (!target) return this.inner.grant(principal, repository, requested);
    const canPull = await this.authorizePull(principal, repository, target.upstream.config).then(
      () => true,
      () => false,
    );
    if (!canPull) return [];
    const writes = requested.filter((a) => a !== 'pull');
    // Writes are granted only to those who could write there, to be refused with the reason.
    const writable = writes.length ? await this.inner.grant(principal, repository, writes).catch(() => []) : [];
    return requested.filter((a) => a === 'pull' || writable.includes(a));
  }

  canSee(principal: Principal, repository: string): Promise<boolean> {
    return this.inner.canSee(principal, repository);
  }

  private async authorizePull(principal: Principal, repository: RepositoryName, config: { anonymousPull: boolean; namespaceId: number }): Promise<void> {
    if (config.anonymousPull) return;
    if (principal.kind !== 'anonymous' && (await this.membership.pullsThrough(principal, config.namespaceId))) return;
    await this.inner.authorize(principal, repository, ['pull']);
  }
}
