import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../oci/errors.js';
import { splitRepositoryName, type RepositoryName } from '../../oci/reference.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Principal } from '../../registry/access.js';
import type { Registry } from '../../registry/registry.js';

/** What a `/v2` handler gets: the services, the caller, and the request/reply pair. */
export interface V2Context {
  registry: Registry;
  metrics: Metrics;
  principal: Principal;
  req: FastifyRequest;
  reply: FastifyReply;
}

export function query(req: FastifyRequest): Record<string, string | undefined> {
  const q = req.query as Record<string, string | string[] | undefined>;
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(q ?? {})) out[k] = Array.isArray(v) ? v[0] : v;
  return out;
}

/**
 * The request body as a byte stream, counted into the received-bytes metric. A body that ends early
 * (the client hung up, or Node refused its framing) is the client's doing, not the registry's: it is
 * logged at info, without a trace, and the stream fails with a 400 the handler's clean-up sees
 * (MANIFEST_INVALID for a manifest, BLOB_UPLOAD_INVALID for blob bytes), so nothing is stored.
 */
export async function* body(ctx: V2Context, route: 'manifest' | 'blob'): AsyncIterable<Uint8Array> {
  const counter = ctx.metrics.bytesReceived.labels(route);
  let received = 0;
  try {
    // Only reading can fail here: an error in the consumer ends this generator through return().
    for await (const chunk of ctx.req.raw as AsyncIterable<Buffer>) {
      counter.inc(chunk.byteLength);
      received += chunk.byteLength;
      yield chunk;
    }
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    ctx.req.log.info({ route, received, reason }, 'request body ended early');
    const code = route === 'manifest' ? 'MANIFEST_INVALID' : 'BLOB_UPLOAD_INVALID';
    throw new RegistryError(code, `the request body ended after ${received} bytes (${reason}): the client hung up or sent a malformed body`);
  }
}

/**
 * Records a push, pull or delete in the audit log (when the registry keeps one) with the caller's
 * address and agent. With `background` the reply does not wait for the write (pulls: the hot path);
 * the entry is still written, in order, before shutdown completes and before the log is next read.
 */
export async function audit(ctx: V2Context, kind: string, name: RepositoryName, metadata: Record<string, unknown>, opts: { background?: boolean } = {}): Promise<void> {
  const log = ctx.registry.audit;
  if (!log) return;
  const { namespace, repository } = splitRepositoryName(name);
  const ua = ctx.req.headers['user-agent'];
  const entry = { actor: ctx.principal, ip: ctx.req.ip, userAgent: typeof ua === 'string' ? ua : null, namespace, repository, metadata };
  const failed = (err: unknown) => ctx.req.log.warn({ err, kind }, 'could not write the audit log');
  try {
    if (opts.background) log.submit(kind, entry, failed);
    else await log.record(kind, entry);
  } catch (err) {
    failed(err);
  }
}
