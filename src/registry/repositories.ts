/** Looks up and creates repositories by their parsed names. */
import { RegistryError } from '../oci/errors.js';
import { splitRepositoryName, type RepositoryName } from '../oci/reference.js';
import type { RepositoryDetails, RepositoryRef, RepositoryStore } from '../db/repository-store.js';

export type { RepositoryDetails, RepositoryRef };

export type Visibility = 'private' | 'public';
export type RepositoryState = 'NORMAL' | 'READ_ONLY' | 'MIRROR';
export const REPOSITORY_STATES: readonly RepositoryState[] = ['NORMAL', 'READ_ONLY', 'MIRROR'];

export class RepositoryService {
  constructor(private readonly store: RepositoryStore) {}

  /** The repository, or NAME_UNKNOWN. */
  async get(name: RepositoryName): Promise<RepositoryRef> {
    const repo = await this.find(name);
    if (!repo) throw new RegistryError('NAME_UNKNOWN', `repository ${name} not found`);
    return repo;
  }

  find(name: RepositoryName): Promise<RepositoryRef | undefined> {
    const { namespace, repository } = splitRepositoryName(name);
    return this.store.find(namespace, repository);
  }

  /** Finds or creates the repository; only push paths call this. */
  ensure(name: RepositoryName): Promise<RepositoryRef> {
    const { namespace, repository } = splitRepositoryName(name);
    return this.store.ensure(namespace, repository);
  }

  /** The repository with namespace, visibility, state and mirror robot, or undefined. */
  details(name: RepositoryName): Promise<RepositoryDetails | undefined> {
    const { namespace, repository } = splitRepositoryName(name);
    return this.store.findDetails(namespace, repository);
  }

  /**
   * Creates the repository in its existing namespace, applying the namespace's default permissions and
   * making `creator` an admin of it, all in one transaction; returns the existing one (`created: false`)
   * if it is there already, and NAME_UNKNOWN if the namespace does not exist. Unlike `ensure`, never
   * creates a namespace.
   */
  async create(
    name: RepositoryName,
    opts: { visibility: Visibility; description?: string | null; creator?: { kind: 'user' | 'robot'; id: number } },
  ): Promise<{ repository: RepositoryDetails; created: boolean }> {
    const { namespace, repository } = splitRepositoryName(name);
    const res = await this.store.create(namespace, repository, opts);
    if (!res) throw new RegistryError('NAME_UNKNOWN', `namespace ${namespace} does not exist`);
    return res;
  }

  setVisibility(repo: RepositoryRef, visibility: Visibility): Promise<boolean> {
    return this.store.setVisibility(repo.id, visibility);
  }

  /** Sets the description (null clears it); false if the repository is gone. */
  setDescription(repo: RepositoryRef, description: string | null): Promise<boolean> {
    return this.store.setDescription(repo.id, description);
  }

  setState(repo: RepositoryRef, state: RepositoryState): Promise<boolean> {
    return this.store.setState(repo.id, state);
  }

  /** The robot (by id) whose writes the repository accepts while it is in state MIRROR; null clears it. */
  setMirrorRobot(repo: RepositoryRef, robotId: number | null): Promise<boolean> {
    return this.store.setMirrorRobot(repo.id, robotId);
  }

  /** Deletes the repository, its manifests, tags (with history) and blob links; blob bytes wait for GC. */
  delete(repo: RepositoryRef): Promise<boolean> {
    return this.store.delete(repo.id);
  }

  listNames(opts: { last?: string; limit: number }): Promise<string[]> {
    return this.store.listNames(opts);
  }
}
