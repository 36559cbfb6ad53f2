/**
 * The two cookies of sign-in, read and written at the edge:
 *
 *   wharf_session  the session's secret (accounts/session-service.ts), set by `POST /api/v1/signin`
 *   wharf_csrf     a random token for the sign-in form itself, set by `GET /csrf_token` before there is a
 *                  session; sign-in requires the same value in `X-CSRF-Token` (double submit)
 *
 * Both are HttpOnly, SameSite=Lax, Path=/, and Secure when the request came over TLS (directly, or
 * through a proxy named in `trust_proxy` that says so in `X-Forwarded-Proto`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'wharf_session';
export const CSRF_COOKIE = 'wharf_csrf';
/** The request header that carries a session's CSRF token (Quay's name). */
export const CSRF_HEADER = 'x-csrf-token';
/** The response header that gives the CSRF token of a session just opened (Quay's name). */
export const NEXT_CSRF_HEADER = 'X-Next-CSRF-Token';

/** The value of cookie `name` in the request, or undefined; the first one wins when it is sent twice. */
export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 16_384) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0 || part.slice(0, i).trim() !== name) continue;
    const value = part.slice(i + 1).trim().replace(/^"(.*)"$/, '$1');
    return /^[A-Za-z0-9_-]{1,256}$/.test(value) ? value : undefined;
  }
  return undefined;
}

/** Sets cookie `name` to `value` for `maxAgeSeconds` (0 removes it). */
export function setCookie(req: FastifyRequest, reply: FastifyReply, name: string, value: string, maxAgeSeconds: number): void {
  const attributes = [`${name}=${value}`, 'Path=/', `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`, 'HttpOnly', 'SameSite=Lax'];
  if (req.protocol === 'https') attributes.push('Secure');
  reply.header('Set-Cookie', attributes.join('; '));
}

export function clearCookie(req: FastifyRequest, reply: FastifyReply, name: string): void {
  setCookie(req, reply, name, '', 0);
}
