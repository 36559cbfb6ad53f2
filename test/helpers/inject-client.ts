/** Small helpers over `app.inject()` for route tests. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
export const sha512 = (data: Buffer | string) => `sha512:${createHash('sha512').update(data).digest('hex')}`;

export function errorCode(res: LightMyRequestResponse): string | undefined {
  try {
    return (res.json() as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** Asserts an OCI error envelope with `status` and `code`. */
export function assertError(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  assert.equal(errorCode(res), code, res.body);
  assert.match(String(res.headers['content-type']), /application\/json/);
}

export async function pushBlob(app: FastifyInstance, name: string, data: Buffer | string): Promise<string> {
  const digest = sha256(data);
  const res = await app.inject({ method: 'POST', url: `/v2/${name}/blobs/uploads/?digest=${digest}`, payload: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.statusCode, 201, res.body);
  return digest;
}

export function imageManifest(config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>, extra: Record<string, unknown> = {}) {
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
    ...extra,
  };
}

/** Pushes a config and one layer and a manifest for them; returns the manifest bytes and digest. */
export async function pushImage(app: FastifyInstance, name: string, ref: string, seed = 'x', extra: Record<string, unknown> = {}) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer-${seed}`);
  const configDigest = await pushBlob(app, name, config);
  const layerDigest = await pushBlob(app, name, layer);
  const body = Buffer.from(JSON.stringify(imageManifest({ digest: configDigest, size: config.length }, [{ digest: layerDigest, size: layer.length }], extra)));
  const res = await app.inject({
    method: 'PUT',
    url: `/v2/${name}/manifests/${ref}`,
    payload: body,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.statusCode, 201, res.body);
  return { body, digest: sha256(body), configDigest, layerDigest, response: res };
}
