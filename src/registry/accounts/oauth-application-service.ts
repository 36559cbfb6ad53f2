/**
 * OAuth applications of organizations (Quay's), and the one grant Wharf implements for them: the
 * implicit grant (`response_type=token`) a signed-in user makes at `/oauth/authorizeapp`, which yields
 * an API token with the requested scopes, tied to the application (deleting the application deletes
 * the tokens granted through it). The client secret is shown once, at creation; only its SHA-256 is
 * stored (no grant Wharf implements uses it).
 *
 * Callers check who may do what (PermissionService.canAdminNamespace) before they call.
 */
import { randomBytes } from 'node:crypto';
import type { OAuthApplicationFields, OAuthApplicationRecord, OAuthApplicationStore } from '../../db/oauth-application-store.js';
import type { OrganizationStore } from '../../db/organization-store.js';
import { AccountError } from './account-error.js';
import { validateScopes, type ApiScope } from './api-scopes.js';
import type { ApiTokenService } from './api-token-service.js';
import { isLookupName } from './names.js';
import { sha256 } from './passwords.js';

export type OAuthApplication = OAuthApplicationRecord & { organization: string };

/** How long a granted token lives (Quay's OAuth tokens last as long). */
export const OAUTH_TOKEN_LIFETIME_S = 10 * 365 * 86_400;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function code(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  // Rejection sampling keeps every character equally likely.
  for (const b of bytes) if (b < 252 && out.length < length) out += ALPHABET.charAt(b % 36);
  return out.length === length ? out : code(length);
}

export class OAuthApplicationService {
  private readonly now: () => number;

  constructor(
    private readonly stores: { oauthApplications: OAuthApplicationStore; organizations: OrganizationStore },
    private readonly apiTokens: ApiTokenService,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  async list(organization: string): Promise<OAuthApplication[]> {
    const org = await this.requireOrganization(organization);
    return (await this.stores.oauthApplications.list(org.id)).map((a) => ({ ...a, organization: org.name }));
  }

  /** Creates an application; its client secret is returned here only. Conflict when the name is taken in the organization. */
  async create(organization: string, fields: OAuthApplicationFields): Promise<{ application: OAuthApplication; clientSecret: string }> {
    const org = await this.requireOrganization(organization);
    const clientSecret = code(40);
    const created = await this.stores.oauthApplications.create(org.id, checked(fields), code(20), sha256(clientSecret), this.now());
    if (!created) throw new AccountError('conflict', `organization ${org.name} has an application named ${fields.name} already`);
    return { application: { ...created, organization: org.name }, clientSecret };
  }

  /** The organization's application with this client id; not_found otherwise. */
  async get(organization: string, clientId: string): Promise<OAuthApplication> {
    const org = await this.requireOrganization(organization);
    const app = typeof clientId === 'string' && clientId.length <= 64 ? await this.stores.oauthApplications.findByClientId(clientId) : undefined;
    if (!app || app.namespace_id !== org.id) throw new AccountError('not_found', `application ${String(clientId).slice(0, 64)} not found`);
    return { ...app, organization: org.name };
  }

  async update(organization: string, clientId: string, fields: OAuthApplicationFields): Promise<OAuthApplication> {
    const app = await this.get(organization, clientId);
    const done = await this.stores.oauthApplications.update(app.id, checked(fields));
    if (done === undefined) throw new AccountError('conflict', `organization ${app.organization} has an application named ${fields.name} already`);
    return this.get(organization, clientId);
  }

  /** Deletes the application and every token granted through it. */
  async delete(organization: string, clientId: string): Promise<OAuthApplication> {
    const app = await this.get(organization, clientId);
    await this.stores.oauthApplications.delete(app.id);
    return app;
  }

  /** The application of a client id, with its organization's name, or undefined. */
  async byClientId(clientId: string): Promise<OAuthApplication | undefined> {
    const app = typeof clientId === 'string' && clientId.length <= 64 ? await this.stores.oauthApplications.findByClientId(clientId) : undefined;
    const org = app && (await this.stores.organizations.findById(app.namespace_id));
    return app && org ? { ...app, organization: org.name } : undefined;
  }

  /** An API token for the user with `scopes`, granted through the application (the implicit grant). */
  async grantToken(app: OAuthApplication, userName: string, scopes: readonly string[]): Promise<{ secret: string; expiresInS: number; scopes: ApiScope[] }> {
    const valid = validateScopes(scopes);
    const { secret } = await this.apiTokens.create(userName, {
      name: `OAuth: ${app.name}`.slice(0, 255),
      scopes: valid,
      expiresAt: this.now() + OAUTH_TOKEN_LIFETIME_S * 1000,
      applicationId: app.id,
    });
    return { secret, expiresInS: OAUTH_TOKEN_LIFETIME_S, scopes: valid };
  }

  private async requireOrganization(name: string) {
    const org = isLookupName(name) ? await this.stores.organizations.find(name) : undefined;
    if (!org) throw new AccountError('not_found', `organization ${String(name).slice(0, 100)} not found`);
    return org;
  }
}

function checked(f: OAuthApplicationFields): OAuthApplicationFields {
  if (typeof f.name !== 'string' || f.name.trim() === '' || f.name.length > 255) throw new AccountError('invalid_request', 'an application name is 1 to 255 characters');
  for (const [k, v] of Object.entries({ description: f.description, application_uri: f.application_uri, redirect_uri: f.redirect_uri })) {
    if (typeof v !== 'string' || v.length > 2048) throw new AccountError('invalid_request', `${k} is text of at most 2048 characters`);
  }
  if (f.avatar_email !== null && (typeof f.avatar_email !== 'string' || f.avatar_email.length > 254)) throw new AccountError('invalid_request', 'avatar_email is at most 254 characters');
  return f;
}
