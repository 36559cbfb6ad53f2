/**
 * Robot accounts of an organization (`/organization/{orgname}/robots…`, administered by its admins,
 * listed by its members) and of the calling user (`/user/robots…`, user:admin scope; user:read to list).
 *
 *   GET    …/robots                                 {robots: [{name, description, created}]}
 *   PUT    …/robots/{robot_shortname}               201 {name, description, created, token}
 *   GET    …/robots/{robot_shortname}               {name, description, created, token?} (administrators only)
 *   DELETE …/robots/{robot_shortname}               204; its logins fail from the next request
 *   POST   …/robots/{robot_shortname}/regenerate    {name, description, created, token}; the old token stops working
 *   GET    …/robots/{robot_shortname}/federation    [{issuer, subject}]: the OIDC identities trusted for the robot
 *   POST   …/robots/{robot_shortname}/federation    [{issuer, subject}] replaces them (Quay's rules); the reply is the new list
 *   DELETE …/robots/{robot_shortname}/federation    204; the list is empty afterwards
 *
 * Federation entries are stored and returned; Wharf does not yet exchange OIDC tokens for robot tokens.
 * A robot's administrators (organization admins, the user for their own robots, superusers) read its
 * token again with GET, as in Quay, when it was kept sealed with the registry's secret key
 * (robot-service.ts); the list never carries tokens.
 */
import { z } from 'zod';
import { robotFullName } from '../../registry/accounts/names.js';
import { robotView } from './account-views.js';
import type { ApiContext } from './context.js';
import { notFound } from './errors.js';
import { administeredOrganization, visibleOrganization } from './organization-access.js';
import { defineRoute, type ApiRoute } from './route.js';
import { FederationSchema, RobotSchema, RobotWithTokenSchema } from './schemas.js';

type Access = (ctx: ApiContext, params: Record<string, string>, change: boolean) => Promise<string>;

const orgNamespace: Access = async (ctx, params, change) => {
  const name = params.orgname!;
  const view = change ? await administeredOrganization(ctx, name) : await visibleOrganization(ctx, name);
  return view.org.name;
};

const userNamespace: Access = async (ctx, _params, change) => ctx.user(change ? 'user:admin' : 'user:read').name;

function robotRoutes(prefix: string, tag: string, nsParams: z.ZodObject<Record<string, z.ZodString>>, namespaceOf: Access, who: string): ApiRoute[] {
  const RobotParams = nsParams.extend({ robot_shortname: z.string().max(255) });
  const robot = async (ctx: ApiContext, params: Record<string, string>, change: boolean) => {
    const namespace = await namespaceOf(ctx, params, change);
    const short = params.robot_shortname!;
    return { namespace, short, full: robotFullName(namespace, short) };
  };
  const existing = async (ctx: ApiContext, full: string) => {
    const found = await ctx.accounts.robots.get(full);
    if (!found) throw notFound(`robot ${full.slice(0, 300)}`);
    return found;
  };
  return [
    defineRoute({
      method: 'GET',
      path: `${prefix}/robots`,
      summary: `The robot accounts of ${who}`,
      tag,
      params: nsParams,
      response: z.strictObject({ robots: z.array(RobotSchema) }),
      async handler(ctx, { params }) {
        const namespace = await namespaceOf(ctx, params as Record<string, string>, false);
        return { robots: (await ctx.accounts.robots.list(namespace)).map(robotView) };
      },
    }),
    defineRoute({
      method: 'PUT',
      path: `${prefix}/robots/:robot_shortname`,
      summary: `Create a robot account of ${who}; the reply holds its token, shown only this once`,
      tag,
      status: 201,
      params: RobotParams,
      body: z.object({ description: z.string().max(4096).nullable().optional() }),
      response: RobotWithTokenSchema,
      async handler(ctx, { params, body }) {
        const { namespace, short } = await robot(ctx, params as Record<string, string>, true);
        const created = await ctx.accounts.robots.create(namespace, short, { description: body.description });
        await ctx.audit('create_robot', { namespace, metadata: { robot: created.robot.name } });
        return { ...robotView(created.robot), token: created.token };
      },
    }),
    defineRoute({
      method: 'GET',
      path: `${prefix}/robots/:robot_shortname`,
      summary: `A robot account of ${who}, with its token when the registry kept it (administrators only)`,
      tag,
      params: RobotParams,
      response: RobotSchema.extend({ token: z.string().optional() }),
      async handler(ctx, { params }) {
        const { full } = await robot(ctx, params as Record<string, string>, true);
        const found = await existing(ctx, full);
        const token = await ctx.accounts.robots.token(full);
        return { ...robotView(found), ...(token === undefined ? {} : { token }) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: `${prefix}/robots/:robot_shortname`,
      summary: `Delete a robot account of ${who} and its permissions`,
      tag,
      status: 204,
      params: RobotParams,
      async handler(ctx, { params }) {
        const { namespace, full } = await robot(ctx, params as Record<string, string>, true);
        await existing(ctx, full);
        await ctx.accounts.robots.delete(full);
        await ctx.audit('delete_robot', { namespace, metadata: { robot: full } });
      },
    }),
    defineRoute({
      method: 'POST',
      path: `${prefix}/robots/:robot_shortname/regenerate`,
      summary: `Replace the token of a robot account of ${who}; the reply holds the new token, shown only this once`,
      tag,
      params: RobotParams,
      response: RobotWithTokenSchema,
      async handler(ctx, { params }) {
        const { namespace, full } = await robot(ctx, params as Record<string, string>, true);
        await existing(ctx, full);
        const { robot: r, token } = await ctx.accounts.robots.regenerate(full);
        await ctx.audit('regenerate_robot_token', { namespace, metadata: { robot: r.name } });
        return { ...robotView(r), token };
      },
    }),
    defineRoute({
      method: 'GET',
      path: `${prefix}/robots/:robot_shortname/federation`,
      summary: `The OIDC issuer and subject pairs trusted for a robot account of ${who}`,
      tag,
      params: RobotParams,
      response: z.array(FederationSchema),
      async handler(ctx, { params }) {
        const { full } = await robot(ctx, params as Record<string, string>, true);
        await existing(ctx, full);
        return ctx.accounts.robots.federation(full);
      },
    }),
    defineRoute({
      method: 'POST',
      path: `${prefix}/robots/:robot_shortname/federation`,
      summary: `Replace the OIDC issuer and subject pairs trusted for a robot account of ${who}: each issuer an http(s) URL, no pair twice`,
      tag,
      params: RobotParams,
      body: z.array(z.object({ issuer: z.string().max(2048), subject: z.string().max(2048) })).max(100),
      response: z.array(FederationSchema),
      async handler(ctx, { params, body }) {
        const { namespace, full } = await robot(ctx, params as Record<string, string>, true);
        await existing(ctx, full);
        const stored = await ctx.accounts.robots.setFederation(full, body);
        await ctx.audit('create_robot_federation', { namespace, metadata: { robot: full, config: stored } });
        return stored;
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: `${prefix}/robots/:robot_shortname/federation`,
      summary: `Remove every OIDC identity trusted for a robot account of ${who}`,
      tag,
      status: 204,
      params: RobotParams,
      async handler(ctx, { params }) {
        const { namespace, full } = await robot(ctx, params as Record<string, string>, true);
        await existing(ctx, full);
        await ctx.accounts.robots.setFederation(full, []);
        await ctx.audit('delete_robot_federation', { namespace, metadata: { robot: full } });
      },
    }),
  ];
}

export const orgRobotRoutes = robotRoutes('/organization/:orgname', 'robot', z.object({ orgname: z.string().max(255) }), orgNamespace, 'an organization');
export const userRobotRoutes = robotRoutes('/user', 'user_robot', z.object({}), userNamespace, 'the calling user');
