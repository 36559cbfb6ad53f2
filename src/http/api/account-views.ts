/**
 * JSON views of accounts for `/api/v1`, with Quay's field names. None of them carries a secret: robot
 * tokens, API tokens and generated passwords are added by the one route that creates them, once.
 */
import type { UserInfo } from '../../registry/accounts/account-service.js';
import type { ApiTokenInfo } from '../../registry/accounts/api-token-service.js';
import type { RobotInfo } from '../../registry/accounts/robot-service.js';
import type { TeamInfo } from '../../registry/accounts/team-service.js';
import { isoTime } from './params.js';

/** Milliseconds since the epoch as an ISO 8601 string (null stays null). */
export const iso = isoTime;

export function teamView(team: TeamInfo, memberCount: number) {
  return { name: team.name, description: team.description ?? '', role: team.role, member_count: memberCount };
}

export function robotView(robot: RobotInfo) {
  return { name: robot.name, description: robot.description ?? '', created: iso(robot.createdAt) };
}

export function memberView(name: string, isRobot = false) {
  return { name, kind: 'user' as const, is_robot: isRobot };
}

export function apiTokenView(token: ApiTokenInfo) {
  return {
    id: token.id,
    name: token.name,
    scopes: token.scopes,
    created: iso(token.createdAt),
    expires: iso(token.expiresAt),
    last_used: iso(token.lastUsedAt),
    revoked: iso(token.revokedAt),
  };
}

export function userView(user: UserInfo) {
  return { kind: 'user' as const, name: user.name, username: user.name, email: user.email, super_user: user.superuser, enabled: user.enabled, created: iso(user.createdAt) };
}
