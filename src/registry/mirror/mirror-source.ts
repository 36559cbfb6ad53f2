/**
 * Whether a mirror source (`external_reference`, `registry[:port]/path`, no scheme) may be stored: Quay's
 * format checks and their messages, the repository-path grammar, then the SSRF guard on the registry's
 * host, with DNS (the worker checks again on every connection).
 */
import { isIP } from 'node:net';
import { parseRepositoryName } from '../../oci/reference.js';
import { parseUpstreamSpec, UpstreamSpecError, type SsrfGuard } from '../../upstream/ssrf.js';
import { admitUpstreamHost } from '../upstream-host-admission.js';
import { NOT_ALLOWED } from './mirror-config-input.js';

/**
 * Why the source may not be stored, or undefined. `serverGuard`: the running server's guard when this
 * process (the CLI) has another allowlist; the source must pass both.
 */
export async function checkMirrorSource(reference: string, guard: SsrfGuard, serverGuard?: SsrfGuard): Promise<string | undefined> {
  const problem = referenceProblem(reference);
  if (problem) return problem;
  const host = parseUpstreamSpec(reference.slice(0, reference.indexOf('/'))).host;
  const admission = await admitUpstreamHost(host, guard, serverGuard);
  if (admission.ok) return undefined;
  return admission.reason === 'blocked' ? `${NOT_ALLOWED}: ${admission.message}` : admission.message;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Quay's checks of a mirror source `registry[:port]/path` (its messages), and the path's grammar. */
function referenceProblem(reference: string): string | undefined {
  if (!reference.trim()) return 'External registry reference is required';
  if (/\s/.test(reference)) return 'External registry reference must not include whitespace';
  if (reference.includes('://')) return 'External registry reference must not include a URL scheme';
  if (/[?#\\%]/.test(reference)) return 'External registry reference contains an invalid character';
  const slash = reference.indexOf('/');
  if (slash <= 0 || slash === reference.length - 1) return 'External registry reference must include a repository path';
  const registry = reference.slice(0, slash);
  const path = reference.slice(slash + 1);
  if (registry.includes('@')) return 'External registry reference must include a valid registry hostname';
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d*))?$/.exec(registry);
  if (!m) return 'External registry reference contains an invalid registry authority';
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  if (m[2] !== undefined && (m[2] === '' || Number(m[2]) < 1 || Number(m[2]) > 65535)) return 'External registry reference contains an invalid registry port';
  if (m[1]!.startsWith('[') ? isIP(host) !== 6 : !(isIP(host) === 4 || HOSTNAME_RE.test(host))) return 'External registry reference must include a valid registry hostname';
  if (!parseRepositoryName(path).ok) return `External registry reference has an invalid repository path "${path.slice(0, 200)}"`;
  try {
    parseUpstreamSpec(registry);
  } catch (err) {
    if (err instanceof UpstreamSpecError) return err.message;
    throw err;
  }
  return undefined;
}
