/**
 * Manifest parsing and validation. Input is the exact bytes a client pushed; nothing here re-serialises
 * them, so what is stored and served stays byte-for-byte what was pushed.
 */
import { parseDigest, type Digest } from './digest.js';
import { RegistryError } from './errors.js';
import { MediaType, isIndexMediaType, isManifestMediaType, normalizeMediaType, type ManifestMediaType } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ParsedManifest {
  mediaType: ManifestMediaType;
  /** Config and layers of an image manifest; empty for an index. */
  config?: Descriptor;
  layers: Descriptor[];
  /** Children of an index; empty for an image manifest. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** The artifact type reported by the referrers API. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function isIndex(m: ParsedManifest): boolean {
  return isIndexMediaType(m.mediaType);
}

/** Blobs a manifest needs present in its repository: config and layers that carry no external `urls`. */
export function requiredBlobs(m: ParsedManifest): Descriptor[] {
  const out: Descriptor[] = [];
  if (m.config) out.push(m.config);
  for (const layer of m.layers) if (!layer.urls || layer.urls.length === 0) out.push(layer);
  return out;
}

const invalid = (message: string, detail?: unknown) => new RegistryError('MANIFEST_INVALID', message, detail);

/**
 * Parses manifest bytes pushed with `contentType`. Throws MANIFEST_INVALID with a precise message for
 * invalid JSON, schema 1, unknown or contradictory media types and malformed descriptors.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw invalid(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalid('manifest must be a JSON object');

  const header = contentType ? normalizeMediaType(contentType) : '';
  const bodyType = doc.mediaType;
  if (bodyType !== undefined && typeof bodyType !== 'string') throw invalid('mediaType must be a string');
  if (
    doc.schemaVersion === 1 ||
    header === MediaType.DockerSchema1 ||
    header === MediaType.DockerSchema1Signed ||
    bodyType === MediaType.DockerSchema1 ||
    bodyType === MediaType.DockerSchema1Signed
  ) {
    throw invalid('Docker image manifest schema 1 is not supported; push schema 2 or OCI manifests');
  }
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  let mediaType: string;
  if (typeof bodyType === 'string') {
    if (!isManifestMediaType(bodyType)) throw invalid(`unsupported manifest media type "${bodyType}"`);
    if (header && isManifestMediaType(header) && header !== bodyType) {
      throw invalid(`Content-Type "${header}" does not match the manifest's mediaType "${bodyType}"`);
    }
    mediaType = bodyType;
  } else if (isManifestMediaType(header)) {
    mediaType = header;
  } else if (Array.isArray(doc.manifests)) {
    mediaType = MediaType.OciIndex;
  } else if (isObject(doc.config)) {
    mediaType = MediaType.OciManifest;
  } else {
    throw invalid(`unsupported manifest media type "${header || '(none)'}"`);
  }
  const type = mediaType as ManifestMediaType;

  const annotations = parseAnnotations(doc.annotations, 'annotations');
  const subject = doc.subject === undefined ? undefined : parseDescriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined && !isTypeText(doc.artifactType)) throw invalid('artifactType must be a string without control characters');
  const declaredArtifactType = doc.artifactType as string | undefined;

  if (isIndexMediaType(type)) {
    if (!Array.isArray(doc.manifests)) throw invalid('an image index must have a "manifests" array');
    if (doc.config !== undefined || doc.layers !== undefined) throw invalid('an image index must not have config or layers');
    const manifests = doc.manifests.map((d, i) => parseDescriptor(d, `manifests[${i}]`));
    return { mediaType: type, layers: [], manifests, subject, artifactType: declaredArtifactType, annotations };
  }

  if (doc.config === undefined) throw invalid('an image manifest must have a "config" descriptor');
  if (doc.manifests !== undefined) throw invalid('an image manifest must not have "manifests"');
  const config = parseDescriptor(doc.config, 'config');
  if (doc.layers !== undefined && !Array.isArray(doc.layers)) throw invalid('"layers" must be an array');
  const layers = ((doc.layers as unknown[] | undefined) ?? []).map((d, i) => parseDescriptor(d, `layers[${i}]`));
  const artifactType = declaredArtifactType ?? config.mediaType;
  return { mediaType: type, config, layers, manifests: [], subject, artifactType, annotations };
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor object`);
  const { mediaType, digest, size } = value;
  if (!isTypeText(mediaType) || mediaType.length === 0) throw invalid(`${where}.mediaType must be a non-empty string without control characters`);
  if (typeof digest !== 'string') throw invalid(`${where}.digest must be a string`);
  const parsed = parseDigest(digest);
  if (!parsed.ok) throw invalid(`${where}.digest: ${parsed.reason}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size must be a non-negative integer`);
  const d: Descriptor = { mediaType, digest: parsed.digest, size };
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || !value.urls.every((u) => typeof u === 'string')) throw invalid(`${where}.urls must be an array of strings`);
    d.urls = value.urls as string[];
  }
  if (value.artifactType !== undefined) {
    if (!isTypeText(value.artifactType)) throw invalid(`${where}.artifactType must be a string without control characters`);
    d.artifactType = value.artifactType;
  }
  const annotations = parseAnnotations(value.annotations, `${where}.annotations`);
  if (annotations) d.annotations = annotations;
  if (isObject(value.platform)) d.platform = value.platform as Descriptor['platform'];
  return d;
}

function parseAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw invalid(`${where} must be an object of strings`);
  }
  return value as Record<string, string>;
}

/** A media type or artifact type as Wharf records it: text without control characters (NUL cannot be stored in PostgreSQL). */
function isTypeText(v: unknown): v is string {
  return typeof v === 'string' && !/[\u0000-\u001f\u007f]/.test(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
