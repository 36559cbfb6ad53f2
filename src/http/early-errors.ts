/**
 * Requests that go wrong before a route runs, answered in the error shape of the API they were for:
 * the API's JSON error for paths under `/api/v1`, the OCI error envelope for every other path (`/v2`, and
 * requests whose path cannot even be read).
 *
 *   bytes Node's HTTP parser refuses         400; 431 headers too large; 408 request too slow (clientError)
 *   a path that is not percent-encoding      400, naming the part of a /v2 path (NAME_INVALID, TAG_INVALID…)
 *   a path parameter over 1000 characters    414
 *   `Expect` other than 100-continue         417
 *   HTTP/1.1 without `Host`                  400
 *   `%00` in the URL                         400 (no name, tag or parameter holds NUL; PostgreSQL refuses it)
 *   CONNECT                                  405
 *   a request while the server shuts down    503 UNAVAILABLE, `Connection: close`
 *
 * A malformed request is logged at info, without a stack trace. What Node still answers on its own
 * is listed in docs/api.md.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { RegistryError } from '../oci/errors.js';
import { ApiError, apiErrorBody, renderApiError } from './api/errors.js';
import { renderV2Error } from './v2/errors.js';
import { undecodablePath } from './v2/parse.js';

/** A request refused before routing; `statusCode` as Fastify's own errors, so both APIs render it. */
export class MalformedRequestError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'MalformedRequestError';
  }
}

/** The longest path parameter Fastify's router matches (names may be 255 characters, and are checked by the routes). */
const MAX_PARAM_LENGTH = 1000;

/** Fastify options that route these errors here (`https`: the TLS options, if any, which need one of them too). */
export function earlyErrorOptions(https?: object): Partial<FastifyServerOptions> {
  return {
    ...(https ? { https: { ...https, requireHostHeader: false } } : {}),
    frameworkErrors,
    clientErrorHandler,
    // Requests during shutdown get UNAVAILABLE from the hook below, in the API's error shape.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A request without Host is refused by the hook below, in the API's error shape, not by Node.
    http: { requireHostHeader: false },
  } as unknown as Partial<FastifyServerOptions>;
}

/** The checks every request goes through first, and the server events Node would answer itself. */
export function installEarlyErrors(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req) => {
    if (closing) throw new RegistryError('UNAVAILABLE', 'the registry is shutting down; retry the request', undefined, 503);
    const expect = req.headers.expect;
    if (expect !== undefined && !/100-continue/i.test(expect)) throw new MalformedRequestError(417, `Expect: ${expect.slice(0, 100)} is not supported (only 100-continue)`);
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) throw new MalformedRequestError(400, 'an HTTP/1.1 request needs a Host header');
    if (/%00/.test(req.url)) throw new MalformedRequestError(400, 'the URL holds a NUL character (%00)');
  });
  const server = app.server as Server;
  // Node answers an unknown expectation with an empty 417 unless someone listens; routed here, the
  // hook above refuses it in the API's shape.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => app.routing(req, res));
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    app.log.info({ url: req.url?.slice(0, 300) }, 'malformed request: CONNECT');
    writeAndClose(socket, req.url, 405, 'CONNECT is not supported');
  });
}

/** Errors Fastify raises before routing: a path that is not percent-encoding, a parameter too long. */
function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const url = req.raw.url ?? '/';
  const path = pathOf(url);
  reply.header('X-Request-Id', req.id);
  if (err.code !== 'FST_ERR_BAD_URL' && err.code !== 'FST_ERR_MAX_PARAM_LENGTH') {
    if (isApiPath(path)) return renderApiError(err, req, reply);
    return renderV2Error(err, req, reply);
  }
  req.log.info({ code: err.code, url: url.slice(0, 300) }, 'malformed request');
  const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const message = tooLong ? `a part of the path is longer than ${MAX_PARAM_LENGTH} characters` : `the path "${path.slice(0, 200)}" is not valid percent-encoding`;
  if (isApiPath(path)) return renderApiError(new MalformedRequestError(tooLong ? 414 : 400, message), req, reply);
  const oci = !tooLong && path.startsWith('/v2/') ? undecodablePath(path.slice(4)) : new RegistryError('UNSUPPORTED', message, undefined, tooLong ? 414 : 400);
  renderV2Error(oci, req, reply);
}

/** Bytes Node's HTTP parser refused (bound to the Fastify instance, which logs). */
function clientErrorHandler(this: FastifyInstance, error: Error, socket: Duplex): void {
  const err = error as NodeJS.ErrnoException & { rawPacket?: Buffer; reason?: string };
  // The client is gone: there is nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  const target = inFlight?.req?.url ?? requestTarget(err.rawPacket);
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large']
        : [400, `malformed HTTP request: ${err.reason ?? err.message}${err.code ? ` (${err.code})` : ''}`];
  this.log.info({ code: err.code, url: target?.slice(0, 300) }, 'malformed request');
  // A response already under way cannot be replaced; the connection just ends.
  if (inFlight?.headersSent) socket.destroy();
  else writeAndClose(socket, target, status, message);
}

/** Writes a whole error response on the socket and closes it. */
function writeAndClose(socket: Duplex, target: string | undefined, status: number, message: string): void {
  if (socket.writable) {
    const path = pathOf(target);
    const body = JSON.stringify(isApiPath(path) ? apiErrorBody(new ApiError(status, 'invalid_request', message)) : new RegistryError('UNSUPPORTED', message, undefined, status).toEnvelope());
    const api = isApiPath(path) ? '' : 'Docker-Distribution-API-Version: registry/2.0\r\n';
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${api}Connection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** The request target of the request line in `raw`, if it has one. */
function requestTarget(raw: Buffer | undefined): string | undefined {
  return raw ? /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ +(\S+)/.exec(raw.subarray(0, 8192).toString('latin1'))?.[1] : undefined;
}

/** The path of a request target (origin form `/x?y` or absolute form `http://host/x`). */
function pathOf(target: string | undefined): string {
  if (target === undefined) return '';
  if (target.startsWith('/')) return target.split('?', 1)[0]!;
  try {
    return new URL(target).pathname;
  } catch {
    return '';
  }
}

/** Paths the management API answers (its error handler covers exactly these). */
function isApiPath(path: string): boolean {
  return path === '/api/v1' || path.startsWith('/api/v1/');
}
