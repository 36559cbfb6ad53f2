/**
 * Labels of a manifest, as Quay shows them: the labels of its image configuration (`source_type`
 * "manifest", read-only: they are part of the pushed content) followed by labels added through the API
 * (`source_type` "api"), each with an id. A configuration label's id is derived from the manifest
 * digest and the key, so it is the same on every read.
 *
 * Added labels follow Quay's rules: a key of lower-case letters, digits, `.` and `-` (no two separators
 * in a row, none at either end), at most 255 characters; a media type `text/plain` or
 * `application/json` (when none is given, `application/json` for a value that is JSON, else
 * `text/plain`). Labels go with their manifest when it is deleted.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ManifestLabelRecord, ManifestLabelStore } from '../db/manifest-label-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { AccountError } from './accounts/account-error.js';
import type { ImageConfigReader } from './image-config.js';

export interface ManifestLabel {
  id: string;
  key: string;
  value: string;
  sourceType: 'manifest' | 'api';
  mediaType: string;
}

export const LABEL_MEDIA_TYPES = ['text/plain', 'application/json'] as const;
const KEY = /^[a-z0-9](([a-z0-9]|[-.](?![.-]))*[a-z0-9])?$/;
const MAX_KEY = 255;
const MAX_VALUE = 65_536;

export class ManifestLabelService {
  constructor(
    private readonly images: ImageConfigReader,
    private readonly store: ManifestLabelStore,
  ) {}

  /** The manifest's labels (configuration first, then added ones); only keys starting with `prefix` when given. */
  async list(repo: RepositoryRef, digest: Digest, prefix?: string): Promise<ManifestLabel[]> {
    const { stored, parsed } = await this.images.manifest(repo, digest);
    const config = await this.images.config(repo, parsed);
    const own = Object.entries(config?.labels ?? {})
      .filter(([key]) => prefix === undefined || key.startsWith(prefix))
      .map(([key, value]) => ({ id: configLabelId(digest, key), key, value, sourceType: 'manifest' as const, mediaType: 'text/plain' }));
    return [...own, ...(await this.store.list(stored.id, prefix)).map(apiLabel)];
  }

  /** One label by id; MANIFEST_UNKNOWN when the manifest or the label is missing. */
  async get(repo: RepositoryRef, digest: Digest, id: string): Promise<ManifestLabel> {
    const label = (await this.list(repo, digest)).find((l) => l.id === id);
    if (!label) throw missing(id, digest);
    return label;
  }

  /** Adds a label (see the file comment for the rules; 400 otherwise). */
  async add(repo: RepositoryRef, digest: Digest, input: { key: string; value: string; mediaType?: string | null }): Promise<ManifestLabel> {
    if (input.key.length > MAX_KEY || !KEY.test(input.key)) {
      throw new AccountError('invalid_request', `Label is of an invalid format or missing please use ${KEY.source} format for labels`);
    }
    if (input.value.length > MAX_VALUE) throw new AccountError('invalid_request', `a label value is at most ${MAX_VALUE} characters`);
    const mediaType = input.mediaType ?? (isJson(input.value) ? 'application/json' : 'text/plain');
    if (!(LABEL_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
      throw new AccountError('invalid_request', 'Media type is invalid please use a valid media type: text/plain, application/json');
    }
    const { stored } = await this.images.manifest(repo, digest);
    const record: ManifestLabelRecord = { uuid: randomUUID(), key: input.key, value: input.value, mediaType, createdAt: Date.now() };
    if (!(await this.store.create(stored.id, record))) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} not found in ${repo.namespace}/${repo.name}`);
    return apiLabel(record);
  }

  /** Deletes an added label; 400 for a configuration label, MANIFEST_UNKNOWN when missing. */
  async delete(repo: RepositoryRef, digest: Digest, id: string): Promise<ManifestLabel> {
    const { stored } = await this.images.manifest(repo, digest);
    const deleted = await this.store.delete(stored.id, id);
    if (deleted) return apiLabel(deleted);
    if ((await this.list(repo, digest)).some((l) => l.id === id)) {
      throw new AccountError('invalid_request', 'Cannot delete immutable label: it comes from the image configuration');
    }
    throw missing(id, digest);
  }
}

/** A configuration label's id: a UUID-shaped digest of the manifest digest and the key. */
function configLabelId(digest: Digest, key: string): string {
  const h = createHash('sha256').update(`${digest}\n${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function apiLabel(r: ManifestLabelRecord): ManifestLabel {
  return { id: r.uuid, key: r.key, value: r.value, sourceType: 'api', mediaType: r.mediaType };
}

function isJson(value: string): boolean {
  try {
    const v: unknown = JSON.parse(value);
    return typeof v === 'object' && v !== null;
  } catch {
    return false;
  }
}

function missing(id: string, digest: Digest): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `label ${id.slice(0, 100)} not found on manifest ${digest}`);
}
