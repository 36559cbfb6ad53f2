/**
 * An organization's OAuth applications, at Quay's paths and with its fields (the collection's
 * `quay_application`), for the organization's administrators.
 *
 *   GET    /organization/{org}/applications              {applications: [view]}
 *   POST   /organization/{org}/applications              {name, description?, application_uri?, redirect_uri?, avatar_email?}
 *                                                        → 200 view with client_secret (shown this once)
 *   GET    /organization/{org}/applications/{client_id}  view
 *   PUT    /organization/{org}/applications/{client_id}  {name, description?, application_uri?, redirect_uri?, avatar_email?} → view
 *   DELETE /organization/{org}/applications/{client_id}  204; the tokens granted through it stop working
 *
 *   view: {name, description, application_uri, client_id, client_secret: null, redirect_uri, avatar_email}
 *
 * Quay shows the client secret to administrators on every read; Wharf keeps only its hash, so the secret
 * is in the reply to POST only (the implicit grant at /oauth/authorizeapp does not use it).
 */
import { z } from 'zod';
import type { OAuthApplication } from '../../registry/accounts/oauth-application-service.js';
import { administeredOrganization } from './organization-access.js';
import { defineRoute } from './route.js';

const ApplicationSchema = z.strictObject({
  name: z.string(),
  description: z.string(),
  application_uri: z.string(),
  client_id: z.string(),
  client_secret: z.string().nullable(),
  redirect_uri: z.string(),
  avatar_email: z.string().nullable(),
});

const Fields = z.object({
  name: z.string().trim().min(1).max(255),
  description: z.string().max(2048).nullable().optional(),
  application_uri: z.string().max(2048).nullable().optional(),
  redirect_uri: z.string().max(2048).nullable().optional(),
  avatar_email: z.string().max(254).nullable().optional(),
});

const OrgParams = z.object({ orgname: z.string().max(255) });
const AppParams = OrgParams.extend({ client_id: z.string().min(1).max(64) });

function fields(body: z.output<typeof Fields>) {
  return { name: body.name, description: body.description ?? '', application_uri: body.application_uri ?? '', redirect_uri: body.redirect_uri ?? '', avatar_email: body.avatar_email || null };
}

function view(a: OAuthApplication, clientSecret: string | null = null) {
  return { name: a.name, description: a.description, application_uri: a.application_uri, client_id: a.client_id, client_secret: clientSecret, redirect_uri: a.redirect_uri, avatar_email: a.avatar_email };
}

export const applicationRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/applications',
    summary: "The organization's OAuth applications (its administrators)",
    tag: 'application',
    params: OrgParams,
    response: z.strictObject({ applications: z.array(ApplicationSchema) }),
    async handler(ctx, { params }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      return { applications: (await ctx.accounts.oauthApplications.list(org.name)).map((a) => view(a)) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/applications',
    summary: 'Create an OAuth application; its client_secret is in this reply only',
    tag: 'application',
    params: OrgParams,
    body: Fields,
    response: ApplicationSchema,
    async handler(ctx, { params, body }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      const { application, clientSecret } = await ctx.accounts.oauthApplications.create(org.name, fields(body));
      await ctx.audit('create_application', { namespace: org.name, metadata: { application_name: application.name, client_id: application.client_id } });
      return view(application, clientSecret);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/applications/:client_id',
    summary: 'One OAuth application of the organization',
    tag: 'application',
    params: AppParams,
    response: ApplicationSchema,
    async handler(ctx, { params }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      return view(await ctx.accounts.oauthApplications.get(org.name, params.client_id));
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/applications/:client_id',
    summary: 'Change an OAuth application (name, description, URIs, avatar e-mail)',
    tag: 'application',
    params: AppParams,
    body: Fields,
    response: ApplicationSchema,
    async handler(ctx, { params, body }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      const updated = await ctx.accounts.oauthApplications.update(org.name, params.client_id, fields(body));
      await ctx.audit('update_application', { namespace: org.name, metadata: { application_name: updated.name, client_id: updated.client_id } });
      return view(updated);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/applications/:client_id',
    summary: 'Delete an OAuth application and the tokens granted through it',
    tag: 'application',
    status: 204,
    params: AppParams,
    async handler(ctx, { params }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      const app = await ctx.accounts.oauthApplications.delete(org.name, params.client_id);
      await ctx.audit('delete_application', { namespace: org.name, metadata: { application_name: app.name, client_id: app.client_id } });
    },
  }),
];
