/**
 * Quay's entity lookup: the users, robots, teams and organizations whose names start with a prefix,
 * as the management API's user pickers and automation use it to find an account by name.
 *
 *   users       always (every user, as in Quay, so that a grant can name anyone)
 *   robots      of `namespace`, when the caller is a member of that organization (or a superuser), or
 *               when `namespace` is the caller's own user namespace
 *   teams       of `namespace` with `includeTeams`, for the same callers as robots
 *   the org     itself with `includeOrgs`, when the caller administers it and its name has the prefix
 *
 * A prefix that no account name could start with (after lower-casing and removing spaces, as Quay
 * does) matches nothing: the answer is an empty list, never an error.
 */
import type { EntitySearchStore, MatchingAccount } from '../../db/entity-search-store.js';
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { UserPrincipal } from './account-service.js';
import { isLookupName } from './names.js';
import type { PermissionService } from './permission-service.js';

export interface EntityQuery {
  prefix: string;
  namespace?: string;
  includeTeams: boolean;
  includeOrgs: boolean;
}

export type Entity =
  | { kind: 'user'; name: string; isRobot: boolean; isOrgMember?: boolean }
  | { kind: 'team'; name: string }
  | { kind: 'org'; name: string };

const LIMIT = 10;
/** What an account name may contain (user, organization, team, robot short name). */
const NAME_CHARS = /^[a-z0-9._-]+$/;

export class EntitySearch {
  constructor(
    private readonly stores: { namespaces: NamespaceStore; entitySearch: EntitySearchStore },
    private readonly permissions: PermissionService,
  ) {}

  /** The matching entities the caller may see: teams, then robots and users, then the organization. */
  async search(caller: UserPrincipal, query: EntityQuery): Promise<Entity[]> {
    const prefix = query.prefix.replace(/ /g, '').toLowerCase();
    if (!NAME_CHARS.test(prefix)) return [];
    const ns = query.namespace !== undefined && isLookupName(query.namespace) ? await this.stores.namespaces.findByName(query.namespace) : undefined;
    let robotNamespace: { id: number; name: string } | undefined;
    let organizationId: number | undefined;
    const teams: Entity[] = [];
    const orgs: Entity[] = [];
    if (ns?.kind === 'org') {
      organizationId = ns.id;
      const member = (await this.permissions.organizationRole(caller, ns.name)) !== undefined || (await this.permissions.isSuperuser(caller));
      if (member) {
        robotNamespace = { id: ns.id, name: ns.name };
        if (query.includeTeams) teams.push(...(await this.stores.entitySearch.matchingTeams(ns.id, prefix, LIMIT)).map((name) => ({ kind: 'team' as const, name })));
        if (query.includeOrgs && ns.name.startsWith(prefix) && (await this.permissions.canAdminNamespace(caller, ns.name))) orgs.push({ kind: 'org', name: ns.name });
      }
    } else if (ns?.kind === 'user' && ns.name === caller.name) {
      robotNamespace = { id: ns.id, name: ns.name };
    }
    const accounts: MatchingAccount[] = await this.stores.entitySearch.matchingAccounts(prefix, { robotNamespace, organizationId, limit: LIMIT });
    return [...teams, ...accounts.map((a) => ({ kind: 'user' as const, name: a.name, isRobot: a.isRobot, ...(a.isOrgMember === undefined ? {} : { isOrgMember: a.isOrgMember }) })), ...orgs];
  }
}
