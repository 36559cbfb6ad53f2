/** The services of one registry, as the HTTP layer and workers see them. */
import type { AccessService } from './access.js';
import type { BlobService } from './blobs.js';
import type { ManifestService } from './manifests.js';
import type { RepositoryService } from './repositories.js';
import type { UploadService } from './uploads.js';

export interface HealthCheck {
  /** Each dependency by name, true when it answered. */
  check(): Promise<Record<string, boolean>>;
}

export interface Registry {
  access: AccessService;
  repositories: RepositoryService;
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  health: HealthCheck;
  /** Parsing options the edge needs. */
  options: { defaultNamespace: string; maxPageSize: number; maxManifestSize: number };
}
