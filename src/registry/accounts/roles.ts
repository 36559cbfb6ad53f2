/**
 * Roles, ordered. A repository role grants everything below it (`admin` ⊃ `write` ⊃ `read`); a team
 * role in an organization does the same (`admin` ⊃ `creator` ⊃ `member`).
 *
 *   repository  read   pull
 *               write  pull, push, delete tags and manifests
 *               admin  write, plus permissions, visibility, state and deletion of the repository
 *   team        member  nothing by itself; repositories grant the team roles
 *               creator member, plus creating repositories in the organization
 *               admin   admin of every repository and of the organization itself
 */
export const REPOSITORY_ROLES = ['read', 'write', 'admin'] as const;
export type RepositoryRole = (typeof REPOSITORY_ROLES)[number];

export const TEAM_ROLES = ['member', 'creator', 'admin'] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

export function isRepositoryRole(value: unknown): value is RepositoryRole {
  return typeof value === 'string' && (REPOSITORY_ROLES as readonly string[]).includes(value);
}

export function isTeamRole(value: unknown): value is TeamRole {
  return typeof value === 'string' && (TEAM_ROLES as readonly string[]).includes(value);
}

/** Whether `role` includes `needed`; an absent role includes nothing. */
export function roleAtLeast(role: RepositoryRole | undefined, needed: RepositoryRole): boolean {
  return role !== undefined && REPOSITORY_ROLES.indexOf(role) >= REPOSITORY_ROLES.indexOf(needed);
}

/** The strongest of the roles given (undefined entries are ignored). */
export function maxRole(...roles: Array<RepositoryRole | string | undefined>): RepositoryRole | undefined {
  let best = -1;
  for (const r of roles) best = Math.max(best, REPOSITORY_ROLES.indexOf(r as RepositoryRole));
  return best < 0 ? undefined : REPOSITORY_ROLES[best];
}

/** The weaker of two roles: a cap (e.g. an API token's scopes) applied to what the principal holds. */
export function minRole(a: RepositoryRole | undefined, b: RepositoryRole | undefined): RepositoryRole | undefined {
  if (a === undefined || b === undefined) return undefined;
  return REPOSITORY_ROLES[Math.min(REPOSITORY_ROLES.indexOf(a), REPOSITORY_ROLES.indexOf(b))];
}

/** The strongest team role of those given. */
export function maxTeamRole(roles: Iterable<string>): TeamRole | undefined {
  let best = -1;
  for (const r of roles) best = Math.max(best, TEAM_ROLES.indexOf(r as TeamRole));
  return best < 0 ? undefined : TEAM_ROLES[best];
}
