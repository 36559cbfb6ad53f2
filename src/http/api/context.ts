/** What an `/api/v1` handler gets: the caller, the services, and checks that throw the right errors. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../registry/access.js';
import type { Accounts } from '../../registry/accounts/accounts.js';
import { hasScope, type ApiScope } from '../../registry/accounts/api-scopes.js';
import type { Registry } from '../../registry/registry.js';
import { forbidden, unauthorized } from './errors.js';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

export class ApiContext {
  constructor(
    readonly registry: Registry,
    readonly accounts: Accounts,
    readonly principal: Principal,
    readonly req: FastifyRequest,
    readonly reply: FastifyReply,
  ) {}

  /** The calling user; 401 for anonymous callers, 403 for robots (they have no user API). */
  user(scope?: ApiScope): UserPrincipal {
    if (this.principal.kind === 'anonymous') throw unauthorized();
    if (this.principal.kind !== 'user') throw forbidden('robot accounts cannot use this endpoint');
    if (scope && !hasScope(this.principal, scope)) throw forbidden(`the API token lacks the ${scope} scope`);
    return this.principal;
  }

  /** 401 for anonymous callers; any authenticated principal passes. */
  authenticated(): Exclude<Principal, { kind: 'anonymous' }> {
    if (this.principal.kind === 'anonymous') throw unauthorized();
    return this.principal;
  }

  async superuser(): Promise<UserPrincipal> {
    const user = this.user('super:user');
    if (!(await this.accounts.permissions.isSuperuser(user))) throw forbidden('superuser access required');
    return user;
  }

  /** Records an audit entry with the caller, client address and user agent. */
  audit(kind: string, where: { namespace?: string; repository?: string; metadata?: Record<string, unknown> } = {}): Promise<void> {
    return this.accounts.audit.record(kind, {
      actor: this.principal,
      ip: this.req.ip,
      userAgent: typeof this.req.headers['user-agent'] === 'string' ? this.req.headers['user-agent'] : undefined,
      ...where,
    });
  }
}
