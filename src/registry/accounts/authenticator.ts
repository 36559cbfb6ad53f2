/**
 * Turns credentials into a principal, for HTTP Basic on `/v2`, the token endpoint and `/api/v1`:
 *
 *   `<ns>+<robot>` : robot token       → the robot
 *   `$app`         : app token         → the token's user, capped by the repository scopes (Quay's app tokens)
 *   `$token`       : API token         → the token's user, capped by its scopes
 *   `<user>`       : API or app token of user → that user, capped by the token's scopes
 *   `<user>`       : password          → that user
 *
 * Every failure is the same `undefined`, whatever the reason (unknown name, wrong secret, disabled,
 * expired, revoked), and an unknown user costs one scrypt like a known one. Throttling failed logins is
 * the caller's job.
 */
import type { UserStore } from '../../db/user-store.js';
import type { RobotStore } from '../../db/robot-store.js';
import type { Principal } from '../access.js';
import type { AccountService } from './account-service.js';
import type { ApiTokenService } from './api-token-service.js';
import { APP_TOKEN_USERNAME } from './app-token-service.js';
import { isLookupName, parseRobotName } from './names.js';
import { sha256 } from './passwords.js';
import type { RobotService } from './robot-service.js';

export type AuthMethod = 'password' | 'robot_token' | 'api_token' | 'app_token';

export interface Authenticated {
  principal: Exclude<Principal, { kind: 'anonymous' }>;
  method: AuthMethod;
  /** The API or app token's id, when `method` is 'api_token' or 'app_token'. */
  tokenId?: number;
}

export const API_TOKEN_USERNAME = '$token';

export class Authenticator {
  constructor(
    private readonly services: { accounts: AccountService; robots: RobotService; apiTokens: ApiTokenService },
    private readonly stores: { users: UserStore; robots: RobotStore },
  ) {}

  /** The principal these credentials prove, or undefined. */
  async authenticate(username: string, secret: string): Promise<Authenticated | undefined> {
    if (typeof username !== 'string' || typeof secret !== 'string') return undefined;
    if (username.includes('+')) {
      const robot = await this.services.robots.verify(username, secret);
      return robot && { principal: robot, method: 'robot_token' };
    }
    const viaToken = await this.services.apiTokens.verify(secret);
    if (viaToken) {
      const kind = viaToken.token.kind;
      const named = username === viaToken.principal.name || username === (kind === 'app' ? APP_TOKEN_USERNAME : API_TOKEN_USERNAME);
      if (named) return { principal: viaToken.principal, method: kind === 'app' ? 'app_token' : 'api_token', tokenId: viaToken.token.id };
    }
    if (username === API_TOKEN_USERNAME || username === APP_TOKEN_USERNAME) return undefined;
    const user = await this.services.accounts.verifyPassword(username, secret);
    return user && { principal: user, method: 'password' };
  }

  /**
   * The principal for an account name already proven by other means (e.g. the subject of a registry
   * bearer token Wharf signed): the user or robot if it exists and is enabled, else undefined.
   */
  async principalFor(name: string): Promise<Exclude<Principal, { kind: 'anonymous' }> | undefined> {
    if (typeof name !== 'string') return undefined;
    const robotName = parseRobotName(name);
    if (robotName) {
      const robot = await this.stores.robots.find(robotName.namespace, robotName.short);
      return robot?.namespaceEnabled ? { kind: 'robot', id: robot.id, name: robot.name, namespaceId: robot.namespaceId } : undefined;
    }
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    return user?.enabled ? { kind: 'user', id: user.id, name: user.name, superuser: user.superuser } : undefined;
  }

  /** The user of API token `tokenId`, capped by its scopes, while the token is active (see ApiTokenService). */
  principalForApiToken(tokenId: number): Promise<Extract<Principal, { kind: 'user' }> | undefined> {
    return this.services.apiTokens.principalFor(tokenId);
  }

  /**
   * A value that changes whenever the user's password, enabled flag or existence changes, or undefined
   * when they cannot log in with a password: lets a caller cache a verified password without scrypt.
   */
  async passwordStamp(name: string): Promise<string | undefined> {
    const user = typeof name === 'string' && isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    return user?.passwordHash && user.enabled ? sha256(`${user.id}:${user.passwordHash}`) : undefined;
  }
}
