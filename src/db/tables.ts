/**
 * Table shapes for Kysely. Times are milliseconds since the epoch; booleans are 0/1 integers so that
 * SQLite and PostgreSQL read the same values.
 *
 *   namespaces 1─* repositories 1─* manifests *─* blobs        (manifest_blobs: config and layers)
 *                        │   │           └─* manifests        (manifest_children: an index's children)
 *                        │   └─* tags ──> manifests            (history: lifetime_start / lifetime_end)
 *                        ├─* repository_blobs ──> blobs         (a blob is readable in a repo only if linked)
 *                        └─* uploads
 */
import type { Generated, Insertable, Selectable } from 'kysely';

export interface NamespacesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface RepositoriesTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  created_at: number;
}

export interface BlobsTable {
  id: Generated<number>;
  digest: string;
  size: number;
  created_at: number;
}

export interface RepositoryBlobsTable {
  repository_id: number;
  blob_id: number;
  created_at: number;
}

export interface ManifestsTable {
  id: Generated<number>;
  repository_id: number;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject_digest: string | null;
  /** JSON object of the manifest's annotations, for the referrers API. */
  annotations: string | null;
  size: number;
  content: Buffer;
  created_at: number;
}

export interface ManifestBlobsTable {
  manifest_id: number;
  blob_id: number;
}

export interface ManifestChildrenTable {
  manifest_id: number;
  child_id: number;
}

export interface TagsTable {
  id: Generated<number>;
  repository_id: number;
  name: string;
  manifest_id: number;
  lifetime_start: number;
  /** Null while the tag is live; set when it is moved or deleted (the row stays as history). */
  lifetime_end: number | null;
  /** Hidden tags keep content alive without being listed. */
  hidden: number;
}

export interface UploadsTable {
  id: string;
  repository_id: number;
  size: number;
  created_at: number;
  updated_at: number;
}

export interface Database {
  namespaces: NamespacesTable;
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_blobs: ManifestBlobsTable;
  manifest_children: ManifestChildrenTable;
  tags: TagsTable;
  uploads: UploadsTable;
}

export type ManifestRow = Selectable<ManifestsTable>;
export type NewManifest = Insertable<ManifestsTable>;
