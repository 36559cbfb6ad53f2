/**
 * The AccessService for a registry with accounts: `/v2` actions checked against PermissionService and
 * the repository's state.
 *
 *   pull   needs read
 *   push   needs write
 *   delete needs write (as in Quay, where tags and manifests are deleted with write; deleting the
 *          repository itself is an `/api/v1` operation that needs admin)
 *
 * State: READ_ONLY refuses push and delete to everyone, DENIED "repository … is read-only"; MIRROR
 * accepts them only from the repository's mirror robot (which also needs write, granted when the mirror
 * is configured, as in Quay); any other state refuses writes.
 *
 * Refusals: an anonymous caller gets UNAUTHORIZED (credentials might help: the HTTP layer adds the
 * challenge), an authenticated one DENIED. A repository the caller cannot read gets exactly the same
 * refusal as one that does not exist (same code, message and detail), so its existence does not leak.
 * Only callers who may create repositories in the namespace (or superusers) are let through for a missing
 * repository, to get NAME_UNKNOWN from the handler: they could learn as much by pushing.
 *
 * Push to a missing repository creates it when the caller may create repositories in its namespace (as
 * Quay's token endpoint does): private by default, the namespace's default permissions applied, and the
 * creator made admin unless it is their own namespace. `grant` does the same, so a token request asking
 * for push creates the repository.
 */
import { RegistryError } from '../../oci/errors.js';
import { splitRepositoryName, type RepositoryName } from '../../oci/reference.js';
import type { AccessService, Principal, RepositoryAction } from '../access.js';
import type { RepositoryDetails, RepositoryService, Visibility } from '../repositories.js';
import { isAccountError } from './account-error.js';
import type { PermissionService } from './permission-service.js';
import { roleAtLeast, type RepositoryRole } from './roles.js';

type Decision = { action: RepositoryAction; error?: RegistryError };

export class PermissionAccess implements AccessService {
  private readonly defaultVisibility: Visibility;

  constructor(
    private readonly repositories: RepositoryService,
    private readonly permissions: PermissionService,
    opts: {
      defaultVisibility?: Visibility;
      /** Creates an organization owned by `creator` (a superuser's push into a missing namespace). */
      createOrganization?: (name: string, creator: Extract<Principal, { kind: 'user' }>) => Promise<void>;
      /** Records a repository created by a push in the audit log. */
      recordCreation?: (kind: string, actor: Principal, where: { namespace: string; repository: string; metadata: Record<string, unknown> }) => Promise<void>;
    } = {},
  ) {
    this.defaultVisibility = opts.defaultVisibility ?? 'private';
    this.createOrganization = opts.createOrganization;
    this.recordCreation = opts.recordCreation;
  }

  private readonly createOrganization?: (name: string, creator: Extract<Principal, { kind: 'user' }>) => Promise<void>;
  private readonly recordCreation?: (kind: string, actor: Principal, where: { namespace: string; repository: string; metadata: Record<string, unknown> }) => Promise<void>;

  /** Resolves if every action is allowed; otherwise throws the first refusal (see the file comment). */
  async authorize(principal: Principal, repository: RepositoryName, actions: readonly RepositoryAction[]): Promise<void> {
    for (const d of await this.decide(principal, repository, actions)) if (d.error) throw d.error;
  }

  /**
   * The subset of `requested` the principal may perform, for the token endpoint (which grants the
   * intersection of what was asked and what is allowed). Creates the repository if push is asked for and
   * allowed by the right to create it.
   */
  async grant(principal: Principal, repository: RepositoryName, requested: readonly RepositoryAction[]): Promise<RepositoryAction[]> {
    // A write the caller's role allows but the repository's state forbids is still granted: the request
    // itself is then refused with the reason (403 "read-only", "mirror"), which a client shows its user,
    // instead of a bare "unauthorized" for an action missing from the token.
    return (await this.decide(principal, repository, requested)).filter((d) => !d.error || isStateRefusal(d.error)).map((d) => d.action);
  }

  /** Whether the principal can read the repository (full name `namespace/path`). */
  async canSee(principal: Principal, repository: string): Promise<boolean> {
    if (!repository.includes('/')) return false;
    const repo = await this.repositories.details(repository as RepositoryName);
    return repo !== undefined && roleAtLeast(await this.permissions.roleOn(principal, repo), 'read');
  }

  /** Full names the principal can read, in byte order: the catalog, in one query per page. */
  listReadable(principal: Principal, opts: { last?: string; limit: number }): Promise<string[]> {
    return this.permissions.listReadable(principal, opts);
  }

  private async decide(principal: Principal, name: RepositoryName, requested: readonly RepositoryAction[]): Promise<Decision[]> {
    const actions = [...new Set(requested)];
    const { namespace } = splitRepositoryName(name);
    let repo = await this.repositories.details(name);
    if (!repo) {
      const mayCreate = await this.permissions.canCreateRepository(principal, namespace);
      if (mayCreate && actions.includes('push')) {
        repo = await this.createRepository(principal, name, namespace);
      } else if (principal.kind === 'user' && actions.includes('push') && this.createOrganization && (await this.permissions.isSuperuser(principal))) {
        // A superuser's push into a namespace that does not exist creates it as an organization
        // owned by that superuser (so `skopeo copy ... wharf/anything/app` works on a fresh registry).
        // A name no organization may have (one character, say) refuses the push, not the whole request.
        const refused = await this.createOrganization(namespace, principal).then(
          () => undefined,
          async (err: unknown) => {
            if (await this.permissions.canCreateRepository(principal, namespace)) return undefined;
            if (isAccountError(err) && err.type === 'invalid_request') return new RegistryError('NAME_INVALID', `namespace ${namespace} cannot be created: ${err.message}`);
            throw err;
          },
        );
        if (refused) return actions.map((action) => (action === 'push' ? { action, error: refused } : { action }));
        repo = await this.createRepository(principal, name, namespace);
      } else if (mayCreate || (await this.permissions.isSuperuser(principal))) {
        // Only a superuser reaches this with push when no organization can be made for it.
        const missing = new RegistryError('NAME_UNKNOWN', `namespace ${namespace} does not exist; create the user or organization first`);
        return actions.map((action) => (action === 'push' ? { action, error: missing } : { action }));
      } else {
        return actions.map((action) => ({ action, error: denial(principal, name, actions) }));
      }
    }
    const role = await this.permissions.roleOn(principal, repo);
    return actions.map((action) => ({ action, error: check(principal, repo, role, action, name, actions) }));
  }

  /** Creates the repository a push names (private by default) and records it in the audit log. */
  private async createRepository(principal: Principal, name: RepositoryName, namespace: string): Promise<RepositoryDetails> {
    const { repository, created } = await this.repositories.create(name, { visibility: this.defaultVisibility, creator: creatorGrant(principal, namespace) });
    if (created) await this.recordCreation?.('create_repo', principal, { namespace, repository: repository.name, metadata: { visibility: repository.visibility, via: 'push' } });
    return repository;
  }
}

function check(principal: Principal, repo: RepositoryDetails, role: RepositoryRole | undefined, action: RepositoryAction, name: RepositoryName, actions: RepositoryAction[]): RegistryError | undefined {
  if (!roleAtLeast(role, 'read')) return denial(principal, name, actions);
  if (action === 'pull') return undefined;
  switch (repo.state) {
    case 'NORMAL':
      return roleAtLeast(role, 'write') ? undefined : denial(principal, name, actions);
    case 'READ_ONLY':
      // Only those who could otherwise write learn why they cannot; the rest get the plain refusal.
      if (!roleAtLeast(role, 'write')) return denial(principal, name, actions);
      return stateRefusal(new RegistryError('DENIED', `repository ${name} is read-only`, detail(name, actions)));
    case 'MIRROR':
      if (principal.kind === 'robot' && principal.id === repo.mirrorRobotId && roleAtLeast(role, 'write')) return undefined;
      if (principal.kind === 'anonymous') return denial(principal, name, actions);
      return stateRefusal(new RegistryError('DENIED', `repository ${name} is a mirror; only its mirror robot may change it`, detail(name, actions)));
    default:
      return stateRefusal(new RegistryError('DENIED', `repository ${name} is in state ${repo.state} and cannot be changed`, detail(name, actions)));
  }
}

const STATE_REFUSALS = new WeakSet<RegistryError>();

/** Marks a refusal that comes from the repository's state, not from the caller's rights. */
export function stateRefusal(err: RegistryError): RegistryError {
  STATE_REFUSALS.add(err);
  return err;
}

/** Whether a refusal comes from the repository's state (the caller has the right; the repository says no). */
export function isStateRefusal(err: unknown): boolean {
  return err instanceof RegistryError && STATE_REFUSALS.has(err);
}

/** The refusal for "no access": identical for a missing repository and one the caller cannot see. */
function denial(principal: Principal, name: RepositoryName, actions: RepositoryAction[]): RegistryError {
  return new RegistryError(principal.kind === 'anonymous' ? 'UNAUTHORIZED' : 'DENIED', undefined, detail(name, actions));
}

/** Distribution's error detail: the access that was refused, from which the HTTP layer builds the challenge scope. */
function detail(name: RepositoryName, actions: RepositoryAction[]): Array<{ Type: 'repository'; Name: string; Action: RepositoryAction }> {
  return actions.map((Action) => ({ Type: 'repository', Name: name, Action }));
}

/** Who gets admin on a repository the principal creates: nobody in the user's own namespace (they own it). */
function creatorGrant(principal: Principal, namespace: string): { kind: 'user' | 'robot'; id: number } | undefined {
  if (principal.kind === 'anonymous' || (principal.kind === 'user' && principal.name === namespace)) return undefined;
  return { kind: principal.kind, id: principal.id };
}
