/**
 * The one error shape of `/api/v1`: `{status, error_type, detail, title, error_message, type}` (Quay's
 * fields). Services throw AccountError or RegistryError; the edge throws ApiError; zod and Fastify
 * errors for bad input become `invalid_request`. A refused change of an immutable tag is Quay's
 * `409 tag_immutable`. Nothing a client sends produces a 500.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { isRegistryError, type RegistryError } from '../../oci/errors.js';
import { isAccountError } from '../../registry/accounts/account-error.js';
import { TagImmutableError } from '../../registry/tag-immutability.js';

export type ApiErrorType = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'not_found' | 'conflict' | 'tag_immutable' | 'too_many_requests' | 'unsupported' | 'internal_error';

export class ApiError extends Error {
  headers: Record<string, string> = {};
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const unauthorized = (message = 'authentication required: send a Bearer API token or Basic credentials') => new ApiError(401, 'invalid_token', message);
export const forbidden = (message = 'you do not have permission for this') => new ApiError(403, 'insufficient_scope', message);
export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const invalid = (message: string) => new ApiError(400, 'invalid_request', message);
export const conflict = (message: string) => new ApiError(409, 'conflict', message);

function fromRegistry(err: RegistryError): ApiError {
  // Quay's answer to a change of an immutable tag (a DENIED on /v2).
  if (err instanceof TagImmutableError) return new ApiError(409, 'tag_immutable', err.message);
  let e: ApiError;
  switch (err.code) {
    case 'UNAUTHORIZED':
      e = new ApiError(401, 'invalid_token', err.message);
      break;
    case 'DENIED':
      e = new ApiError(403, 'insufficient_scope', err.message);
      break;
    case 'TOOMANYREQUESTS':
      e = new ApiError(429, 'too_many_requests', err.message);
      break;
    case 'NAME_UNKNOWN':
    case 'MANIFEST_UNKNOWN':
    case 'BLOB_UNKNOWN':
      e = new ApiError(404, 'not_found', err.message);
      break;
    default:
      e = err.status >= 500 ? new ApiError(503, 'internal_error', err.message) : new ApiError(400, 'invalid_request', err.message);
  }
  e.headers = err.headers;
  return e;
}

export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (isAccountError(err)) return new ApiError(err.status, err.type, err.message);
  if (isRegistryError(err)) return fromRegistry(err);
  if (err instanceof ZodError) {
    const detail = err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    return new ApiError(400, 'invalid_request', detail);
  }
  const status = (err as FastifyError)?.statusCode;
  if (status && status >= 400 && status < 500) {
    return new ApiError(status, status === 404 ? 'not_found' : status === 415 ? 'unsupported' : 'invalid_request', (err as Error).message);
  }
  return undefined;
}

/** The JSON body of an error. */
export function apiErrorBody(e: ApiError) {
  return { status: e.status, error_type: e.type, detail: e.message, title: e.type, error_message: e.message, type: `/api/v1/error/${e.type}` };
}

export function renderApiError(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const e = toApiError(err) ?? new ApiError(500, 'internal_error', `internal server error; see the registry log for request ${req.id}`);
  if (e.status === 500) req.log.error({ err }, 'internal error');
  reply.code(e.status).headers(e.headers).header('Content-Type', 'application/json').send(apiErrorBody(e));
}
