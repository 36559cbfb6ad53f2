/**
 * Signed-in sessions, as `/api/v1/signin` opens them (Quay's web session, used by its automation and by
 * a browser). A session is a 256-bit random secret held by the client in an HttpOnly cookie; the
 * database keeps only its SHA-256, the user, and when it was opened and last used.
 *
 * Guarantees:
 * - A session ends (every later `resume` is undefined) when it is ended (sign-out), when its user's
 *   password is set or the user is disabled (AccountService ends every session of the user) or deleted
 *   (the rows go with the user), when it was not used for `idleMs`, and `maxAgeMs` after it was opened.
 * - Its principal is the user with no token scopes: exactly what the user's password gives, re-read
 *   (enabled, superuser) on every `resume`.
 * - Its CSRF token is derived from the secret (a keyed hash), so it is stable for the session's life,
 *   differs between sessions, and cannot be computed from what the database holds.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { SessionStore } from '../../db/session-store.js';
import type { UserStore } from '../../db/user-store.js';
import type { Principal } from '../access.js';
import { randomSecret, sha256 } from './passwords.js';

export interface SessionOptions {
  /** A session unused for this long ends. */
  idleMs: number;
  /** A session ends this long after it was opened, used or not. */
  maxAgeMs: number;
  now?: () => number;
}

export interface OpenedSession {
  /** The cookie's value: shown to the client only. */
  secret: string;
  /** The value the client must send in `X-CSRF-Token` on state-changing calls. */
  csrfToken: string;
  expiresAt: number;
}

export interface ResumedSession {
  id: number;
  principal: Extract<Principal, { kind: 'user' }>;
  csrfToken: string;
}

export class SessionService {
  private readonly now: () => number;

  constructor(
    private readonly stores: { sessions: SessionStore; users: UserStore },
    private readonly opts: SessionOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Opens a session for a user who has just proven their password (the caller checks that). */
  async open(userId: number, client: { ip?: string; userAgent?: string } = {}): Promise<OpenedSession> {
    const now = this.now();
    // Sign-ins are rare next to requests: the time to sweep what has ended everywhere.
    await this.stores.sessions.deleteExpired(now, now - this.opts.idleMs);
    const secret = randomSecret();
    const expiresAt = now + this.opts.maxAgeMs;
    await this.stores.sessions.create({ userId, tokenHash: sha256(secret), now, expiresAt, ip: client.ip, userAgent: client.userAgent });
    return { secret, csrfToken: csrfTokenOf(secret), expiresAt };
  }

  /** The session of this cookie value while it lasts and its user is enabled; undefined otherwise (and the row of an ended session is removed). */
  async resume(secret: string): Promise<ResumedSession | undefined> {
    if (typeof secret !== 'string' || secret.length === 0 || secret.length > 256) return undefined;
    const session = await this.stores.sessions.findByHash(sha256(secret));
    if (!session) return undefined;
    const now = this.now();
    const user = await this.stores.users.findById(session.userId);
    if (session.expiresAt <= now || session.lastSeenAt + this.opts.idleMs <= now || !user || !user.enabled) {
      await this.stores.sessions.delete(session.id);
      return undefined;
    }
    await this.stores.sessions.touch(session.id, now);
    return { id: session.id, principal: { kind: 'user', id: user.id, name: user.name, superuser: user.superuser }, csrfToken: csrfTokenOf(secret) };
  }

  /** Ends the session of this cookie value; false when there was none. */
  async end(secret: string): Promise<boolean> {
    if (typeof secret !== 'string' || secret.length === 0 || secret.length > 256) return false;
    const session = await this.stores.sessions.findByHash(sha256(secret));
    return session !== undefined && (await this.stores.sessions.delete(session.id));
  }

  /** Ends every session of the user. */
  endAllFor(userId: number): Promise<number> {
    return this.stores.sessions.deleteForUser(userId);
  }

  /** Seconds a cookie should live: the absolute lifetime of a session. */
  get maxAgeSeconds(): number {
    return Math.floor(this.opts.maxAgeMs / 1000);
  }
}

/** The CSRF token of a session secret. */
export function csrfTokenOf(secret: string): string {
  return createHash('sha256').update('wharf-csrf\u0000').update(secret).digest('base64url');
}

/** Whether `given` is exactly `expected`, in constant time; false for anything not a non-empty string. */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string' || given.length === 0 || expected.length === 0) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
