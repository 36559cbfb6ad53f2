/**
 * The source of an organization mirror: the list of repositories of a namespace of an external
 * registry, through that registry's own API (the registry's catalogue is not per namespace):
 *
 *   quay     GET {url}/api/v1/repository?namespace={ns}[&next_page=…]         Quay's API, paged by the
 *            `next_page` token it answers (any Quay, or a Wharf: its /api/v1 is Quay's)
 *   harbor   GET {url}/api/v2.0/projects/{project}/repositories?page=N&page_size=100
 *            Harbor's v2.0 API, paged by page number; names come back as `project/repo`
 *
 * Credentials go as HTTP Basic (a Quay robot or user token, a Harbor robot or user). The URL's host is
 * checked by the SSRF guard (with DNS) before each run and every connection goes through it; TLS is
 * verified unless `verify_tls` is false; the `proxy` settings apply as for repository mirrors.
 * Names are returned relative to the namespace (`a`, `team/b`), as given by the source, and only those
 * that are valid repository paths.
 */
import { parseRepositoryName } from '../../oci/reference.js';
import { UpstreamBlockedError } from '../../upstream/errors.js';
import type { SsrfGuard } from '../../upstream/ssrf.js';
import { Transport, type Timeouts } from '../../upstream/transport.js';
import type { OrgMirrorRecord } from '../../db/org-mirror-store.js';
import { bypassesProxy, type SecretOpener } from './mirror-upstream.js';

/** The SecretBox fields organization-mirror credentials are sealed under (not those of repository mirrors). */
export const ORG_MIRROR_SECRET_FIELDS = { username: 'org_mirror_username', password: 'org_mirror_password' } as const;

/** The source's answer cannot be used (what the run and `verify` report). */
export class OrgMirrorSourceError extends Error {
  override name = 'OrgMirrorSourceError';
}

const PAGE_SIZE = 100;
const MAX_PAGES = 1000;
const MAX_PAGE_BYTES = 8 * 1024 * 1024;

export interface OrgMirrorSourceOptions {
  guard: SsrfGuard;
  secrets: () => Promise<SecretOpener>;
  timeouts: Timeouts;
}

export class OrgMirrorSource {
  constructor(private readonly opts: OrgMirrorSourceOptions) {}

  /** The credentials of the mirror, opened; OrgMirrorSourceError when they cannot be. */
  async credentials(record: Pick<OrgMirrorRecord, 'usernameEnc' | 'passwordEnc'>): Promise<{ username: string; password: string } | undefined> {
    if (record.usernameEnc === null) return undefined;
    try {
      const box = await this.opts.secrets();
      return {
        username: box.open(record.usernameEnc, ORG_MIRROR_SECRET_FIELDS.username),
        password: record.passwordEnc === null ? '' : box.open(record.passwordEnc, ORG_MIRROR_SECRET_FIELDS.password),
      };
    } catch {
      throw new OrgMirrorSourceError('Failed to decrypt source registry credentials');
    }
  }

  /** Every repository of the external namespace (relative names, sorted, without duplicates). */
  async list(record: OrgMirrorRecord): Promise<string[]> {
    const base = new URL(record.registryUrl);
    try {
      await this.opts.guard.checkHost(base.hostname.replace(/^\[(.*)\]$/, '$1'));
    } catch (err) {
      if (err instanceof UpstreamBlockedError) throw new OrgMirrorSourceError('The provided URL is not allowed');
      throw new OrgMirrorSourceError(`Cannot resolve hostname '${base.hostname}'`);
    }
    const creds = await this.credentials(record);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const proxyRaw = base.protocol === 'https:' ? record.proxy.https_proxy : record.proxy.http_proxy;
    const proxyUrl = proxyRaw && !bypassesProxy({ host: base.hostname, port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)) }, record.proxy.no_proxy) ? proxyRaw : undefined;
    const transport = new Transport(this.opts.guard, this.opts.timeouts, { verifyTls: record.verifyTls, proxyUrl: proxyUrl && (/^[a-z]+:\/\//i.test(proxyUrl) ? proxyUrl : `http://${proxyUrl}`) });
    try {
      const names = record.registryType === 'harbor' ? await this.harbor(transport, base, record.externalNamespace, headers) : await this.quay(transport, base, record.externalNamespace, headers);
      return [...new Set(names.filter((n) => parseRepositoryName(`${record.organization}/${n}`).ok))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    } finally {
      await transport.close().catch(() => undefined);
    }
  }

  private async quay(t: Transport, base: URL, namespace: string, headers: Record<string, string>): Promise<string[]> {
    const names: string[] = [];
    let next: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = new URL(`${base.pathname.replace(/\/+$/, '')}/api/v1/repository`, base);
      url.searchParams.set('namespace', namespace);
      if (next) url.searchParams.set('next_page', next);
      const body = (await this.getJson(t, url, headers)) as { repositories?: Array<{ namespace?: string; name?: string }>; next_page?: string };
      if (!body || !Array.isArray(body.repositories)) throw new OrgMirrorSourceError(`${url.origin} answered no repository list (is it a Quay registry?)`);
      for (const r of body.repositories) if (typeof r.name === 'string' && (r.namespace === undefined || r.namespace === namespace)) names.push(r.name);
      if (typeof body.next_page !== 'string' || !body.next_page) return names;
      next = body.next_page;
    }
    throw new OrgMirrorSourceError(`more than ${MAX_PAGES} pages of repositories`);
  }

  private async harbor(t: Transport, base: URL, project: string, headers: Record<string, string>): Promise<string[]> {
    const names: string[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const url = new URL(`${base.pathname.replace(/\/+$/, '')}/api/v2.0/projects/${encodeURIComponent(project)}/repositories`, base);
      url.searchParams.set('page', String(page));
      url.searchParams.set('page_size', String(PAGE_SIZE));
      const body = (await this.getJson(t, url, headers)) as Array<{ name?: string }>;
      if (!Array.isArray(body)) throw new OrgMirrorSourceError(`${url.origin} answered no repository list (is it a Harbor registry?)`);
      for (const r of body) {
        if (typeof r.name !== 'string') continue;
        names.push(r.name.startsWith(`${project}/`) ? r.name.slice(project.length + 1) : r.name);
      }
      if (body.length < PAGE_SIZE) return names;
    }
    throw new OrgMirrorSourceError(`more than ${MAX_PAGES} pages of repositories`);
  }

  private async getJson(t: Transport, url: URL, headers: Record<string, string>): Promise<unknown> {
    let res;
    try {
      res = await t.send('GET', url.toString(), headers, { followRedirects: true });
    } catch (err) {
      throw new OrgMirrorSourceError(`Cannot connect to ${url.origin}: ${(err as Error).message}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body.dump().catch(() => undefined);
      throw new OrgMirrorSourceError(`Authentication failed: ${url.origin} answered ${res.status}`);
    }
    if (res.status === 404) {
      await res.body.dump().catch(() => undefined);
      throw new OrgMirrorSourceError(`Namespace not found at ${url.origin} (404)`);
    }
    if (res.status !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new OrgMirrorSourceError(`${url.origin} answered ${res.status}`);
    }
    const bytes = await t.read(res, MAX_PAGE_BYTES, 'repository list');
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new OrgMirrorSourceError(`${url.origin} answered something other than JSON`);
    }
  }
}
