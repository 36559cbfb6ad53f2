/**
 * Whether an upstream host may be stored in a configuration — a proxy cache's upstream, a mirror's
 * source — as far as the SSRF guard is concerned. The host must pass this process's guard and, when this
 * process is the CLI and the running server has another allowlist (`serverGuard`), the server's guard
 * too: the server is the process that will dial it. A refusal says which side refuses and how to align
 * them. Stored hosts are checked again on every connection; this check only keeps refused ones out.
 */
import { UpstreamBlockedError } from '../upstream/errors.js';
import type { SsrfGuard } from '../upstream/ssrf.js';

export type HostAdmission =
  | { ok: true }
  /** An address policy refuses the host (this process's or the running server's). */
  | { ok: false; reason: 'blocked'; message: string }
  /** The host does not resolve (this process's guard resolves it first). */
  | { ok: false; reason: 'unresolvable'; message: string; error: Error };

export async function admitUpstreamHost(host: string, guard: SsrfGuard, serverGuard?: SsrfGuard): Promise<HostAdmission> {
  const own = await verdict(guard, host);
  if (own instanceof UpstreamBlockedError) {
    const serverAllows = serverGuard !== undefined && (await verdict(serverGuard, host)) === true;
    const hint = serverAllows
      ? " (the running server allows it: this command does not read the same proxy_cache.allow_private_upstreams as the server; run it with the server's --config and WHARF_* variables)"
      : '';
    return { ok: false, reason: 'blocked', message: `${own.message}${hint}` };
  }
  if (own instanceof Error) return { ok: false, reason: 'unresolvable', message: `Cannot resolve hostname '${host}'`, error: own };
  if (serverGuard) {
    const server = await verdict(serverGuard, host);
    if (server instanceof UpstreamBlockedError) {
      return {
        ok: false,
        reason: 'blocked',
        message:
          `the running server would refuse it: ${server.message}. This command allows it, the server does not: give the server the same ` +
          "proxy_cache.allow_private_upstreams (and restart it), or run this command with the server's --config and WHARF_* variables",
      };
    }
  }
  return { ok: true };
}

/** true when the guard lets the host through; its refusal, or the DNS error (a failure to resolve), otherwise. */
async function verdict(guard: SsrfGuard, host: string): Promise<true | Error> {
  try {
    await guard.checkHost(host);
    return true;
  } catch (err) {
    if (err instanceof UpstreamBlockedError) return err;
    if ((err as NodeJS.ErrnoException)?.code) return err as Error;
    throw err;
  }
}
