import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from './errors.js';
import { parseManifest, requiredBlobs } from './manifest.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const enc = (o: unknown) => Buffer.from(JSON.stringify(o));
const invalid = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_INVALID' && re.test(err.message));

describe('parseManifest', () => {
  const image = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 10 },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 20 },
      { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('c'), size: 30, urls: ['https://example.com/layer'] },
    ],
  };

  it('parses an image manifest; foreign layers with urls are not required blobs', () => {
    const m = parseManifest(enc(image), 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(m.artifactType, 'application/vnd.oci.image.config.v1+json');
    assert.deepEqual(requiredBlobs(m).map((x) => x.digest), [d('a'), d('b')]);
  });

  it('infers the type from Content-Type or structure when mediaType is absent', () => {
    const { mediaType: _omit, ...noType } = image;
    assert.equal(parseManifest(enc(noType), 'application/vnd.docker.distribution.manifest.v2+json').mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(parseManifest(enc(noType), undefined).mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(parseManifest(enc({ schemaVersion: 2, manifests: [] }), 'application/json').mediaType, 'application/vnd.oci.image.index.v1+json');
  });

  it('parses an index with children and a subject', () => {
    const m = parseManifest(
      enc({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('1'), size: 5, platform: { os: 'linux', architecture: 'arm64' } }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('2'), size: 9 },
        artifactType: 'application/vnd.example',
      }),
      undefined,
    );
    assert.deepEqual(m.manifests.map((x) => x.digest), [d('1')]);
    assert.equal(m.subject?.digest, d('2'));
    assert.equal(m.artifactType, 'application/vnd.example');
  });

  it('refuses what is not a valid schema 2 / OCI manifest', () => {
    invalid(() => parseManifest(Buffer.from('{'), undefined), /not valid JSON/);
    invalid(() => parseManifest(enc('str'), undefined), /JSON object/);
    invalid(() => parseManifest(enc({ schemaVersion: 1 }), undefined), /schema 1/);
    invalid(() => parseManifest(enc({ ...image, schemaVersion: 3 }), undefined), /schemaVersion/);
    invalid(() => parseManifest(enc({ ...image, mediaType: 'text/plain' }), undefined), /unsupported manifest media type/);
    invalid(() => parseManifest(enc(image), 'application/vnd.oci.image.index.v1+json'), /does not match/);
    invalid(() => parseManifest(enc({ ...image, config: undefined }), undefined), /config/);
    invalid(() => parseManifest(enc({ ...image, layers: {} }), undefined), /layers/);
    invalid(() => parseManifest(enc({ ...image, layers: [{ mediaType: 'x', digest: d('b'), size: 1.5 }] }), undefined), /size/);
    invalid(() => parseManifest(enc({ ...image, layers: [{ mediaType: '', digest: d('b'), size: 1 }] }), undefined), /mediaType/);
    invalid(() => parseManifest(enc({ ...image, annotations: { a: 1 } }), undefined), /annotations/);
    invalid(() => parseManifest(enc({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json' }), undefined), /manifests/);
    invalid(() => parseManifest(enc({ schemaVersion: 2 }), 'application/octet-stream'), /unsupported manifest media type/);
  });

  it('refuses control characters in the media and artifact types it records (PostgreSQL cannot store NUL)', () => {
    invalid(() => parseManifest(enc({ ...image, artifactType: 'application/x\u0000y' }), undefined), /^artifactType must be a string without control characters/);
    invalid(() => parseManifest(enc({ ...image, config: { ...image.config, mediaType: 'application/x\u0000' } }), undefined), /config\.mediaType/);
    invalid(() => parseManifest(enc({ ...image, layers: [{ ...image.layers[0], artifactType: 'a\nb' }] }), undefined), /layers\[0\]\.artifactType/);
    // Annotations are recorded as JSON text, where NUL is escaped: they may hold any string.
    assert.deepEqual(parseManifest(enc({ ...image, annotations: { 'a\u0000': 'b\u0000' } }), undefined).annotations, { 'a\u0000': 'b\u0000' });
  });
});
