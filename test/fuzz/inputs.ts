/**
 * Generators of malformed (and, often enough to get past the first check, well-formed) registry input:
 * repository names (nested, 2 to 5 components, among them), references, digests, manifests, upload
 * ranges, Authorization headers, and JSON values for API parameters and bodies. Each takes the Rng, so
 * a seed reproduces every value. Values are raw: a path segment is percent-encoded by the caller only
 * where it says so.
 */
import { createHash } from 'node:crypto';
import type { Rng } from './rng.js';

const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
const TAG_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-';
const HEX = '0123456789abcdef';
const ODD = ['..', '.', '-', '_', '__', '---', 'A', 'É', 'ü', '\u0000', ' ', '\t', '%', '%2F', '%2f', '%00', '%zz', '%e0%80', '%C0%AF', '~', '+', '@', ':', ';', '*', '"', "'", '<', '>', '\\', '?', '#', '\u202e', '😀'];

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A valid name component. */
export function component(r: Rng): string {
  const parts = [r.text(LOWER, r.between(1, 6))];
  while (r.chance(0.25)) parts.push(r.pick(['.', '_', '__', '-', '--']), r.text(LOWER, r.between(1, 4)));
  return parts.join('');
}

/** A valid name of 2 to 5 components under one of `namespaces`. */
export function validName(r: Rng, namespaces: readonly string[]): string {
  const n = r.between(2, 5);
  const parts = [r.pick(namespaces)];
  for (let i = 1; i < n; i++) parts.push(r.chance(0.5) ? r.pick(['app', 'img', 'x', 'lib', 'base']) : component(r));
  return parts.join('/');
}

/** A repository name as a path would carry it: valid, or broken in one of many ways. */
export function name(r: Rng, namespaces: readonly string[]): string {
  const good = validName(r, namespaces);
  return r.weighted<string>([
    [5, () => good],
    [1, () => component(r)],
    [1, () => good.toUpperCase()],
    [1, () => `${good}/`],
    [1, () => `/${good}`],
    [1, () => good.replace('/', '//')],
    [1, () => good.replace('/', '%2F')],
    [1, () => good.replace('/', `/${r.pick(ODD)}/`)],
    [1, () => `${good}${r.pick(ODD)}`],
    [1, () => `${r.pick(ODD)}${good}`],
    [1, () => `${good}/${'a'.repeat(r.pick([200, 250, 256, 1000]))}`],
    [1, () => Array.from({ length: r.between(6, 60) }, () => component(r)).join('/')],
    [1, () => `${r.pick(namespaces)}/${r.text(LOWER + '._-', r.between(1, 12))}`],
    [1, () => ''],
  ]);
}

export function tag(r: Rng): string {
  return r.weighted<string>([
    [5, () => r.text(TAG_CHARS.slice(0, 63), 1) + r.text(TAG_CHARS, r.between(0, 20))],
    [1, () => r.pick(['latest', 'v1', '1.0', 'v1.2.3-rc_1'])],
    [1, () => r.text(TAG_CHARS, 129)],
    [1, () => `.${r.text(TAG_CHARS, 3)}`],
    [1, () => `-${r.text(TAG_CHARS, 3)}`],
    [1, () => `${r.text(TAG_CHARS, 3)}${r.pick(ODD)}`],
    [1, () => ''],
  ]);
}

export function digest(r: Rng, known: readonly string[] = []): string {
  const hex = (n: number) => r.text(HEX, n);
  return r.weighted<string>([
    [3, () => `sha256:${hex(64)}`],
    [2, () => (known.length ? r.pick(known) : `sha256:${hex(64)}`)],
    [1, () => `sha512:${hex(128)}`],
    [1, () => `sha256:${hex(r.pick([0, 1, 63, 65, 128]))}`],
    [1, () => `sha256:${hex(64).toUpperCase()}`],
    [1, () => `sha512:${hex(64)}`],
    [1, () => `${r.pick(['md5', 'sha1', 'SHA256', 'sha-256', 'sha256+b64', 'a', ''])}:${hex(64)}`],
    [1, () => `sha256${hex(64)}`],
    [1, () => `sha256:${hex(60)}${r.pick(ODD)}`],
    [1, () => `sha256::${hex(64)}`],
    [1, () => ':'],
  ]);
}

/** A manifest reference: a tag or a digest, valid or not. */
export function reference(r: Rng, known: readonly string[]): string {
  return r.chance(0.6) ? tag(r) : digest(r, known);
}

/** A number meant to land past a range: dates, sizes, counts, durations. */
export function hostileNumber(r: Rng): number {
  return r.pick([
    0, -0, -1, 1, 0.5, -0.5, 1.5, 59, 60, 86_400, 1e9, 1e10, 1e12, 8.64e12, 8.64e12 + 1, 1e13, 1e15, 8.64e15, 8.64e15 + 1, 1e16, 1e20, 1e300,
    Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 31 - 1, -(2 ** 31),
    2 ** 32, 2 ** 53, 2 ** 63, 2 ** 64, -1e300, Math.floor(Date.now() / 1000) + 3600, Date.now() + 3_600_000, 253_402_300_799, 253_402_300_800,
  ]);
}

/** Text meant to be a number, a time, a duration or a size, usually not quite one. */
export function hostileNumberText(r: Rng): string {
  return r.weighted<string>([
    [3, () => String(hostileNumber(r))],
    [1, () => r.pick(['', ' ', '-', '+1', '0x10', '1e3', '1_000', 'NaN', 'Infinity', '-Infinity', '١٢', '01', '00000000000000000001', '9'.repeat(r.pick([9, 10, 15, 16, 20, 400]))])],
    [1, () => r.pick(['1s', '30d', '2w', '1y', '100y', '101y', '999y', '9999999999999999d', '0s', '1h30m', '5 m', '7D', 'forever', '1ms'])],
    [1, () => r.pick(['2030-01-01', '2030-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '+275760-09-13T00:00:01Z', '275760-09-13', '0000-01-01', '2030-13-45', '12/31/9999', '1/1/275761', '99/99/9999', '2030-01-01T25:61:61Z'])],
    [1, () => r.pick(['10 GiB', '1.5 GB', '0 B', '-1 MiB', '99999999999 TiB', '1e400', '1 XB'])],
  ]);
}

/** Any JSON value, biased to hostile numbers and wrong types. */
export function jsonValue(r: Rng, depth = 0): unknown {
  return r.weighted<unknown>([
    [5, () => hostileNumber(r)],
    [3, () => hostileNumberText(r)],
    [1, () => null],
    [1, () => r.chance(0.5)],
    [1, () => r.text(LOWER + ODD.join(''), r.between(0, 30))],
    [1, () => 'x'.repeat(r.pick([256, 1025, 5000]))],
    [1, () => (depth > 2 ? [] : Array.from({ length: r.between(0, 3) }, () => jsonValue(r, depth + 1)))],
    [1, () => (depth > 2 ? {} : { [r.pick(['a', 'expiration', '__proto__', 'constructor'])]: jsonValue(r, depth + 1) })],
  ]);
}

/** A `Content-Range` of an upload chunk. */
export function contentRange(r: Rng, size: number): string {
  const n = () => String(r.pick([0, 1, size - 1, size, size + 1, 2 ** 53, 1e21, -1]));
  return r.weighted<string>([
    [3, () => `0-${Math.max(0, size - 1)}`],
    [2, () => `${n()}-${n()}`],
    [1, () => `bytes ${n()}-${n()}/${r.pick(['*', String(size), '0', '-1', 'x'])}`],
    [1, () => `bytes=${n()}-${n()}`],
    [1, () => r.pick(['', '-', '0-', '-5', 'a-b', '0-4,5-9', ' 0 - 4 ', '0-99999999999999999999999', '١-٢'])],
  ]);
}

/** A blob `Range` header. */
export function byteRange(r: Rng): string {
  return r.pick(['bytes=0-0', 'bytes=0-', 'bytes=-1', 'bytes=5-2', 'bytes=99999999999999999999-', 'bytes=-', 'bytes=0-1,3-4', 'items=0-1', 'bytes=1e3-', '']);
}

/**
 * An Authorization header: valid credentials are given as `valid`, everything else is made up. Made-up
 * `user:password` pairs cost a password hash each (scrypt, tens of milliseconds by design), so they are
 * rarer than the malformed headers that are refused before any hashing.
 */
export function authorization(r: Rng, valid: readonly string[]): string {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const seg = () => Buffer.from(r.bytes(r.between(0, 40))).toString('base64url');
  return r.weighted<string>([
    [4, () => r.pick(valid)],
    [3, () => `Basic ${b64(Buffer.from(r.bytes(r.between(0, 30)).filter((c) => c !== 0x3a)))}`],
    [3, () => `Basic ${r.pick(['', '!!!', '====', 'bm9jb2xvbg==', '\u00ff', b64('a'.repeat(2000))])}`],
    [3, () => `Bearer ${seg()}.${seg()}.${seg()}`],
    [2, () => `Bearer ${b64('{"alg":"none","typ":"JWT"}')}.${b64('{"sub":"root","access":[{"type":"repository","name":"*","actions":["*"]}]}')}.`],
    [2, () => `Bearer ${r.pick(['', ' ', 'x'.repeat(600), 'null', 'undefined', 'a.b', '..', 'e30.e30.e30'])}`],
    [3, () => r.pick(['Basic', 'Bearer', 'Digest username="root"', 'Negotiate abc', '   ', 'Bearer a b c'])],
    [1, () => {
      const user = r.pick(['root', 'fuzzer', 'nobody', '', 'x'.repeat(300), 'ü']);
      return r.pick([`Basic ${b64(`${user}:${r.text(LOWER, r.between(0, 20))}`)}`, `basic   ${b64(`${user}:x`)}`, `Basic ${b64(`${user}:x`)} extra`, `Basic\t${b64(`${user}:x`)}`, `Basic ${b64(`:${'p'.repeat(2000)}`)}`]);
    }],
  ]);
}

export interface BlobRef {
  digest: string;
  size: number;
}

/** A manifest body (often valid JSON, sometimes an almost-valid manifest over known blobs). */
export function manifestBody(r: Rng, blobs: readonly BlobRef[], manifests: readonly BlobRef[]): Buffer {
  const desc = (pool: readonly BlobRef[], mediaType: string): unknown => {
    const b = pool.length && r.chance(0.7) ? r.pick(pool) : { digest: digest(r), size: r.between(0, 100) };
    const d: Record<string, unknown> = { mediaType, digest: b.digest, size: b.size };
    if (r.chance(0.2)) d.size = jsonValue(r);
    if (r.chance(0.1)) d.digest = digest(r);
    if (r.chance(0.1)) d.mediaType = jsonValue(r);
    if (r.chance(0.05)) d.urls = [r.pick(['http://127.0.0.1/x', 'file:///etc/passwd', ''])];
    if (r.chance(0.05)) d.annotations = { [r.text(LOWER, 3)]: jsonValue(r) };
    return d;
  };
  const image = (): Record<string, unknown> => ({
    schemaVersion: 2,
    mediaType: r.pick(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']),
    config: desc(blobs, 'application/vnd.oci.image.config.v1+json'),
    layers: Array.from({ length: r.between(0, 3) }, () => desc(blobs, 'application/vnd.oci.image.layer.v1.tar+gzip')),
  });
  const index = (): Record<string, unknown> => ({
    schemaVersion: 2,
    mediaType: r.pick(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']),
    manifests: Array.from({ length: r.between(0, 3) }, () => ({ ...(desc(manifests, 'application/vnd.oci.image.manifest.v1+json') as object), platform: { os: 'linux', architecture: jsonValue(r) } })),
  });
  const base = r.chance(0.6) ? image() : index();
  return r.weighted<Buffer>([
    [6, () => Buffer.from(JSON.stringify(base))],
    [2, () => Buffer.from(JSON.stringify({ ...base, [r.pick(['schemaVersion', 'mediaType', 'config', 'layers', 'manifests', 'subject', 'artifactType', 'annotations'])]: r.chance(0.5) ? jsonValue(r) : desc(manifests, 'application/vnd.oci.image.manifest.v1+json') }))],
    [1, () => Buffer.from(JSON.stringify(base)).subarray(0, r.between(0, 40))],
    [1, () => Buffer.from(r.pick(['', 'null', '[]', '{}', '"x"', '1e999', '{"schemaVersion":1}', '{"schemaVersion":2}', '\u0000', '{"a":'.repeat(50)]))],
    [1, () => Buffer.from(`${'['.repeat(r.pick([100, 5000]))}${']'.repeat(100)}`)],
    [1, () => r.bytes(r.between(1, 200))],
  ]);
}

/** A Content-Type for a manifest PUT. */
export function manifestType(r: Rng): string | undefined {
  return r.pick([
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/json',
    'text/plain',
    'application/vnd.oci.image.manifest.v1+json; charset=utf-8',
    '',
    ';;;',
    undefined,
  ]);
}

/** A path segment for an `/api/v1` parameter: a known name, or garbage, percent-encoded or not. */
export function apiSegment(r: Rng, known: readonly string[]): string {
  return r.weighted<string>([
    [4, () => r.pick(known)],
    [1, () => encodeURIComponent(r.pick(known)).replace(/%2F/g, r.pick(['%2F', '%2f', '/']))],
    [1, () => r.text(LOWER, r.between(1, 10))],
    [1, () => r.pick(['%', '%zz', '%e0%80', '%00', '..', '.', '%2e%2e', 'a%2Fb', 'x'.repeat(300), encodeURIComponent('ü😀'), '+', '~', '%20'])],
    [1, () => String(hostileNumber(r))],
  ]);
}

/** A query-string value. */
export function queryValue(r: Rng): string {
  return r.weighted<string>([
    [3, () => encodeURIComponent(hostileNumberText(r))],
    [1, () => r.pick(['true', 'false', '1', '0', 'True', 'yes', '', 'like:v', 'eq:v1', 'like:%', 'eq:', 'like:' + 'x'.repeat(200)])],
    [1, () => encodeURIComponent(tag(r))],
    [1, () => r.pick(['%', '%zz', '%e0%80', '%00', 'a&b', 'a=b', '[]', '%5B%5D'])],
  ]);
}
