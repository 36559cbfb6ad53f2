/** The content of repositories this registry holds itself, and the resolver that serves every name locally. */
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { Reference, RepositoryName } from '../oci/reference.js';
import type { BlobService } from './blobs.js';
import type { ContentResolver, ReferrersIndex, RepositoryContent, ServedBlob, ServedManifest, TagListPage } from './content.js';
import type { ManifestService } from './manifests.js';
import type { RepositoryService } from './repositories.js';

export interface LocalContentDeps {
  manifests: ManifestService;
  blobs: BlobService;
  repositories: RepositoryService;
  /** The largest tag page served (`registry.max_page_size`). */
  maxPageSize: number;
}

export class LocalContent implements RepositoryContent {
  constructor(
    readonly name: RepositoryName,
    private readonly deps: LocalContentDeps,
  ) {}

  manifest(ref: Reference, accept: readonly string[]): Promise<ServedManifest> {
    return this.deps.manifests.get(this.name, ref, accept);
  }

  async blob(digest: Digest): Promise<ServedBlob> {
    const { repositories, blobs } = this.deps;
    const repo = await repositories.find(this.name);
    if (!repo) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${this.name}`);
    const record = await blobs.stat(repo, digest);
    return { digest, size: record.size, open: (range) => blobs.serve(record, range) };
  }

  async tags(page: { last?: string; n?: number }): Promise<TagListPage> {
    const repo = await this.deps.repositories.get(this.name);
    const limit = page.n ?? this.deps.maxPageSize;
    if (limit === 0) return { tags: [], pageSize: 0 };
    // One more than the page tells whether another page follows.
    const rows = await this.deps.manifests.tags(repo, { last: page.last, limit: limit + 1 });
    const tags = rows.slice(0, limit);
    return { tags, next: rows.length > limit ? tags[tags.length - 1] : undefined, pageSize: limit };
  }

  async referrers(subject: Digest, artifactType?: string): Promise<ReferrersIndex> {
    const repo = await this.deps.repositories.find(this.name);
    return this.deps.manifests.referrers(repo, subject, artifactType);
  }
}

/** Serves every repository from local content (no proxy cache). */
export class LocalContentResolver implements ContentResolver {
  constructor(private readonly deps: LocalContentDeps) {}

  async resolve(name: RepositoryName): Promise<RepositoryContent> {
    return new LocalContent(name, this.deps);
  }

  async pullName(name: string): Promise<string> {
    return name;
  }

  instrument(): void {}

  async open(): Promise<void> {}

  async close(): Promise<void> {}
}
