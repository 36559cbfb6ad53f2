/**
 * Requests whose bytes matter: a generated `/v2` or `/api/v1` request written on a socket, with its
 * framing broken one way or another (what a confused proxy, a fuzzer or a client that hangs up sends).
 */
import type { RawRequest } from '../helpers/raw-http.js';
import { apiRequest, v2Request } from './requests.js';
import type { Rng } from './rng.js';
import type { FuzzWorld, Sent } from './world.js';

/** The request as HTTP/1.1 bytes; `framing` replaces Content-Length with other body framing. */
export function serialize(sent: Sent, opts: { id: string; extraHeaders?: string[]; framing?: 'length' | 'none' | string[]; bodyOverride?: Buffer; requestLine?: string } = { id: 'x' }): Buffer {
  const body = opts.bodyOverride ?? (sent.body === undefined ? Buffer.alloc(0) : Buffer.from(sent.body));
  const lines = [opts.requestLine ?? `${sent.method} ${sent.url} HTTP/1.1`, 'Host: fuzz.test', `X-Request-Id: ${opts.id}`, 'Connection: close'];
  for (const [k, v] of Object.entries(sent.headers ?? {})) lines.push(`${k}: ${v}`);
  const framing = opts.framing ?? 'length';
  if (framing === 'length') {
    if (sent.body !== undefined && !Object.keys(sent.headers ?? {}).some((k) => k.toLowerCase() === 'content-length')) lines.push(`Content-Length: ${Buffer.byteLength(sent.body)}`);
  } else if (framing !== 'none') lines.push(...framing);
  lines.push(...(opts.extraHeaders ?? []));
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

const EXPECT = ['garbage', '100-continue', '100-Continue', '200-ok', '', '100-continue, x', 'x'.repeat(200)];

/** One generated request with broken framing, with the id it carries (`X-Request-Id`). */
export function framedRequest(r: Rng, w: FuzzWorld, id: string): RawRequest {
  const sent = r.chance(0.6) ? v2Request(r, w) : apiRequest(r, w);
  if (sent.body === undefined && r.chance(0.5)) sent.body = r.bytes(r.between(1, 64));
  const body = sent.body === undefined ? Buffer.alloc(0) : Buffer.from(sent.body);
  const path = sent.url;
  const base = { path, method: sent.method };
  return r.weighted<RawRequest>([
    [2, () => ({ ...base, bytes: serialize(sent, { id }) })],
    [2, () => ({ ...base, bytes: serialize(sent, { id, extraHeaders: [`Expect: ${r.pick(EXPECT)}`] }) })],
    [1, () => ({ ...base, bytes: serialize(sent, { id, extraHeaders: [`X-Big: ${'a'.repeat(r.pick([8_000, 17_000, 70_000]))}`] }) })],
    [1, () => ({ ...base, bytes: serialize(sent, { id, extraHeaders: Array.from({ length: r.pick([100, 3000]) }, (_, i) => `X-H${i}: ${i}`) }) })],
    [2, () => {
      const bad = breakPercent(r, path);
      return { ...base, path: bad, bytes: serialize({ ...sent, url: bad }, { id }) };
    }],
    [3, () => {
      // The body ends early: a longer Content-Length, then the client half-closes or hangs up.
      const declared = body.length + r.between(1, 1000);
      return { ...base, then: r.pick(['end', 'destroy'] as const), bytes: serialize(sent, { id, framing: [`Content-Length: ${declared}`] }) };
    }],
    [2, () => {
      // Chunked framing with a bad chunk size, or cut short.
      const chunk = `${body.length.toString(16)}\r\n${body.toString('latin1')}\r\n`;
      const tail = r.pick(['zz\r\n', '-1\r\n', `${'f'.repeat(20)}\r\n`, '5\r\nab', '', '0\r\nX-Trailer: \u0001\r\n\r\n', '5;ext="\r\n']);
      return { ...base, then: r.pick(['end', 'destroy'] as const), bytes: serialize(sent, { id, framing: ['Transfer-Encoding: chunked'], bodyOverride: Buffer.from(chunk + tail, 'latin1') }) };
    }],
    [1, () => ({ ...base, bytes: serialize(sent, { id, framing: [`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked'] }) })],
    [1, () => ({ ...base, bytes: serialize(sent, { id, framing: [r.pick(['Content-Length: -1', 'Content-Length: 1e3', `Content-Length: ${body.length}, ${body.length + 1}`, 'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked, identity', 'Content-Length: 99999999999999999999'])] }) })],
    [1, () => ({ ...base, bytes: serialize(sent, { id, extraHeaders: [r.pick(['Bad Header: x', 'X-Ctl: a\u0001b', 'X-Nul: \u0000', ': empty', 'X-Fold: a\r\n  folded', 'Host: second.test'])] }) })],
    [1, () => {
      const line = r.pick([`${sent.method} ${path} HTTP/9.9`, `${sent.method.toLowerCase()} ${path} HTTP/1.1`, `${sent.method} ${path}`, `${sent.method} http://fuzz.test${path} HTTP/1.1`, `${sent.method}  ${path} HTTP/1.1`, `BREW ${path} HTTP/1.1`, `${sent.method} ${path} HTTP/1.0`]);
      return { ...base, bytes: serialize(sent, { id, requestLine: line }) };
    }],
    [1, () => ({ ...base, bytes: serialize(sent, { id }).toString('latin1').replace('Host: fuzz.test\r\n', '') })],
  ]);
}

/** The path with one character (or a `%xx`) replaced by a percent-sign that decodes to nothing valid. */
function breakPercent(r: Rng, path: string): string {
  const [p, q] = path.split('?', 2) as [string, string | undefined];
  const at = r.between(Math.min(4, p.length), p.length);
  const broken = `${p.slice(0, at)}${r.pick(['%', '%z', '%zz', '%e0%80', '%C0', '%ff%fe'])}${p.slice(at)}`;
  return q === undefined ? broken : `${broken}?${q}`;
}
