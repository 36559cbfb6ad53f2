/** Renders any error raised under `/v2` as the OCI error envelope; client mistakes never become a 500. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, RegistryError, isRegistryError, type ErrorCode } from '../../oci/errors.js';

/** Fastify's own 4xx errors (bad headers, unsupported media, body limits) mapped onto registry codes. */
function fromFastify(err: FastifyError): RegistryError | undefined {
  const status = err.statusCode;
  if (!status || status >= 500) return undefined;
  const code: ErrorCode = status === 413 ? 'SIZE_INVALID' : status === 415 ? 'UNSUPPORTED' : status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'DENIED' : status === 404 ? 'NAME_UNKNOWN' : 'UNSUPPORTED';
  return new RegistryError(code, err.message, undefined, status);
}

export function renderV2Error(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const known = isRegistryError(err) ? err : fromFastify(err as FastifyError);
  if (!known) {
    req.log.error({ err }, 'internal error');
    reply.code(500).header('Content-Type', 'application/json').send({ errors: [{ code: 'UNKNOWN', message: 'internal server error; see the registry log for request ' + req.id }] });
    return;
  }
  if (known.status >= 500) req.log.warn({ code: known.code, status: known.status, reason: known.message }, 'registry unavailable');
  else req.log.debug({ code: known.code, status: known.status }, known.message);
  reply.code(known.status).headers(known.headers).header('Content-Type', 'application/json').send(known.toEnvelope());
}

export { ERROR_CODES };
