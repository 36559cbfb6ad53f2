/**
 * Users' starred repositories (Quay's `is_starred`). Starring needs only read access to the repository,
 * which the caller checks first; a user's stars go when the user or the repository goes.
 */
import type { RepositoryRef } from '../../db/repository-store.js';
import type { StarStore } from '../../db/star-store.js';
import type { UserPrincipal } from './account-service.js';

export class StarService {
  constructor(private readonly stars: StarStore) {}

  /** Stars the repository for the user; false if it was starred already. */
  star(user: UserPrincipal, repo: RepositoryRef): Promise<boolean> {
    return this.stars.star(user.id, repo.id);
  }

  /** Removes the user's star; false if there was none. */
  unstar(user: UserPrincipal, repo: RepositoryRef): Promise<boolean> {
    return this.stars.unstar(user.id, repo.id);
  }

  isStarred(user: UserPrincipal, repo: RepositoryRef): Promise<boolean> {
    return this.stars.isStarred(user.id, repo.id);
  }

  /** Full names of the repositories the user starred, in byte order (the caller filters what they can still read). */
  starredBy(user: UserPrincipal): Promise<string[]> {
    return this.stars.starredBy(user.id);
  }
}
