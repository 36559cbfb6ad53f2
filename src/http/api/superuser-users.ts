/**
 * User management for superusers (super:user scope), at Quay's paths.
 *
 *   GET    /superuser/users/             {users: [...], next_page?}   paged by `limit` and `next_page`
 *   GET    /superuser/users/{username}   the user; 404 when there is none
 *   POST   /superuser/users/             {username, email?, password?} → 201 {username, email, password?}
 *                                        (a password is generated and returned once when none is given)
 *   PUT    /superuser/users/{username}   {password?, email?, enabled?, superuser?}
 *   DELETE /superuser/users/{username}   204; the user's namespace, robots and tokens go with them
 *
 * A superuser cannot delete, disable or demote themselves (400), so that the registry keeps one.
 */
import { z } from 'zod';
import { randomSecret } from '../../registry/accounts/passwords.js';
import { userView } from './account-views.js';
import { invalid, notFound } from './errors.js';
import { defineRoute } from './route.js';
import { UserSchema } from './schemas.js';

const UserParams = z.object({ username: z.string().max(255) });
const Password = z.string().min(8).max(1024);

export const superuserRoutes = [
  defineRoute({
    method: 'GET',
    path: '/superuser/users/',
    summary: 'Every user (superusers only)',
    tag: 'superuser',
    query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100), next_page: z.string().max(255).optional() }),
    response: z.strictObject({ users: z.array(UserSchema), next_page: z.string().optional() }),
    async handler(ctx, { query }) {
      await ctx.superuser();
      const users = await ctx.accounts.accounts.listUsers({ last: query.next_page, limit: query.limit + 1 });
      const page = users.slice(0, query.limit);
      return { users: page.map(userView), ...(users.length > query.limit ? { next_page: page[page.length - 1]!.name } : {}) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/superuser/users/',
    summary: 'Create a user (superusers only); a generated password is returned once',
    tag: 'superuser',
    status: 201,
    body: z.object({ username: z.string().min(1).max(255), email: z.string().max(254).nullable().optional(), password: Password.optional() }),
    response: z.strictObject({ username: z.string(), email: z.string().nullable(), password: z.string().optional() }),
    async handler(ctx, { body }) {
      await ctx.superuser();
      const generated = body.password === undefined ? randomSecret() : undefined;
      const user = await ctx.accounts.accounts.createUser({ name: body.username, email: body.email, password: body.password ?? generated });
      await ctx.audit('user_create', { namespace: user.name, metadata: { username: user.name, email: user.email, generated_password: generated !== undefined } });
      return { username: user.name, email: user.email, ...(generated ? { password: generated } : {}) };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/superuser/users/:username',
    summary: 'One user (superusers only); 404 when there is none',
    tag: 'superuser',
    params: UserParams,
    response: UserSchema,
    async handler(ctx, { params }) {
      await ctx.superuser();
      const user = await ctx.accounts.accounts.getUser(params.username);
      if (!user) throw notFound(`user ${params.username.slice(0, 100)}`);
      return userView(user);
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/superuser/users/:username',
    summary: "Change a user's password, email, enabled or superuser flag (superusers only)",
    tag: 'superuser',
    params: UserParams,
    body: z.object({ password: Password.optional(), email: z.string().max(254).nullable().optional(), enabled: z.boolean().optional(), superuser: z.boolean().optional() }),
    response: UserSchema,
    async handler(ctx, { params, body }) {
      const me = await ctx.superuser();
      const accounts = ctx.accounts.accounts;
      const user = await accounts.getUser(params.username);
      if (!user) throw notFound(`user ${params.username.slice(0, 100)}`);
      if (user.id === me.id && (body.enabled === false || body.superuser === false)) throw invalid('you cannot disable yourself or remove your own superuser status');
      const audit = (kind: string, metadata: Record<string, unknown> = {}) => ctx.audit(kind, { namespace: user.name, metadata: { username: user.name, ...metadata } });
      if (body.password !== undefined) {
        await accounts.setPassword(user.name, body.password);
        await audit('user_change_password');
      }
      if (body.email !== undefined && body.email !== user.email) {
        await accounts.setEmail(user.name, body.email);
        await audit('user_change_email', { email: body.email, old_email: user.email });
      }
      if (body.enabled !== undefined && body.enabled !== user.enabled) {
        await accounts.setEnabled(user.name, body.enabled);
        await audit(body.enabled ? 'user_enable' : 'user_disable');
      }
      if (body.superuser !== undefined && body.superuser !== user.superuser) {
        await accounts.setSuperuser(user.name, body.superuser);
        await audit('user_change_superuser', { superuser: body.superuser });
      }
      return userView((await accounts.getUser(user.name))!);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/superuser/users/:username',
    summary: 'Delete a user with their namespace (superusers only)',
    tag: 'superuser',
    params: UserParams,
    status: 204,
    async handler(ctx, { params }) {
      const me = await ctx.superuser();
      const user = await ctx.accounts.accounts.getUser(params.username);
      if (!user) throw notFound(`user ${params.username.slice(0, 100)}`);
      if (user.id === me.id) throw invalid('you cannot delete yourself');
      await ctx.accounts.accounts.deleteUser(user.name);
      await ctx.audit('user_delete', { namespace: user.name, metadata: { username: user.name } });
    },
  }),
];
