/**
 * zod schemas of the JSON `/api/v1` returns, shared by several routes (the views of account-views.ts).
 * Response objects are strict, so that a test parsing real replies with them notices any new field.
 */
import { z } from 'zod';
import { API_SCOPES } from '../../registry/accounts/api-scopes.js';
import { REPOSITORY_ROLES, TEAM_ROLES } from '../../registry/accounts/roles.js';

/** An ISO 8601 time, as `iso()` renders it. */
export const IsoTime = z.string();

export const TeamSchema = z.strictObject({ name: z.string(), description: z.string(), role: z.enum(TEAM_ROLES), member_count: z.int() });

export const RobotSchema = z.strictObject({ name: z.string(), description: z.string(), created: IsoTime });

/** A robot with its token: only in the replies that create it or replace its token. */
export const RobotWithTokenSchema = RobotSchema.extend({ token: z.string() });

export const MemberSchema = z.strictObject({ name: z.string(), kind: z.literal('user'), is_robot: z.boolean() });

/** An OIDC identity trusted for a robot. */
export const FederationSchema = z.strictObject({ issuer: z.string(), subject: z.string() });

export const ApiTokenSchema = z.strictObject({
  id: z.int(),
  name: z.string(),
  scopes: z.array(z.enum(API_SCOPES)),
  created: IsoTime,
  expires: IsoTime.nullable(),
  last_used: IsoTime.nullable(),
  revoked: IsoTime.nullable(),
});

export const UserSchema = z.strictObject({
  kind: z.literal('user'),
  name: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  super_user: z.boolean(),
  enabled: z.boolean(),
  created: IsoTime,
});

export const RepositoryRoleSchema = z.enum(REPOSITORY_ROLES);

export const RepositoryStateSchema = z.enum(['NORMAL', 'READ_ONLY', 'MIRROR']);

/** `{success: true}` of the repository changes. */
export const SuccessSchema = z.strictObject({ success: z.literal(true) });
