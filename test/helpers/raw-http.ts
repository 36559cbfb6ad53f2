/**
 * Requests written byte for byte on a TCP socket, for what `inject` cannot send: framing Node's HTTP
 * parser refuses (bad chunk sizes, oversized headers, broken request lines), `Expect` values, bodies
 * that end early, clients that hang up. The answer is whatever the server wrote before it closed.
 */
import { connect } from 'node:net';

/** An HTTP answer: status, headers (lower-case names), body. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** What to write and what to do next. */
export interface RawRequest {
  /** The bytes sent. */
  bytes: Buffer | string;
  /** After sending: half-close (`end`, the default), hang up (`destroy`) or wait for the server. */
  then?: 'end' | 'destroy' | 'wait';
  /** The request path and method as written (for the caller's bookkeeping). */
  path: string;
  method: string;
}

/** Sends `req` and resolves with the first answer (undefined when the server wrote nothing). */
export function sendRaw(port: number, req: RawRequest, timeoutMs = 5000): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseAnswer(Buffer.concat(chunks)));
    });
    socket.write(req.bytes, () => {
      if (req.then === 'destroy') setImmediate(() => socket.destroy());
      else if (req.then !== 'wait') socket.end();
    });
  });
}

/** The first HTTP response in `data` (body de-chunked), or undefined if there is none. */
export function parseAnswer(data: Buffer): Answer | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  return { status: Number(m[1]), headers, body };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
