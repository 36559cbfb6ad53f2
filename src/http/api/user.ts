/** The calling user: GET /api/v1/user/ */
import { defineRoute } from './route.js';

export const userRoutes = [
  defineRoute({
    method: 'GET',
    path: '/user/',
    summary: 'The authenticated user',
    tag: 'user',
    async handler(ctx) {
      const me = ctx.user('user:read');
      const user = await ctx.accounts.accounts.getUser(me.name);
      const organizations = await ctx.accounts.accounts.organizationsOf(me.name);
      return {
        anonymous: false,
        username: me.name,
        email: user?.email ?? null,
        super_user: me.superuser,
        organizations: organizations.map((o) => ({ name: o.name })),
      };
    },
  }),
];
