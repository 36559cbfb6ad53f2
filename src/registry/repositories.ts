/** Looks up and creates repositories by their parsed names. */
import { RegistryError } from '../oci/errors.js';
import { splitRepositoryName, type RepositoryName } from '../oci/reference.js';
import type { RepositoryRef, RepositoryStore } from '../db/repository-store.js';

export type { RepositoryRef };

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

  listNames(opts: { last?: string; limit: number }): Promise<string[]> {
    return this.store.listNames(opts);
  }
}
