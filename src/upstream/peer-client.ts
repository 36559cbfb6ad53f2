/**
 * HTTP to the other Wharf processes of one deployment: a follower streams a blob fill in progress from
 * the process that owns it (`GET <owner>/internal/fills/<digest>`, registry/proxy/cluster-fills.ts). The
 * owner's address comes from the database (`blob_fills.owner_url`, its `cluster.advertise_url`), not
 * from a client, and every request carries the deployment's shared secret.
 *
 * A body ends cleanly only when the owner sent all of it: the owner holds its last bytes back until the
 * blob is verified and committed, and a body cut short (the owner died, its fill failed) errors here.
 */
import type { Readable } from 'node:stream';
import type { Agent } from 'undici';
import { undici } from './undici.js';

/** The header that carries the shared secret (registry/proxy/peer-secret.ts re-exports it for the endpoint that checks it). */
export const PEER_SECRET_HEADER = 'x-wharf-peer-secret';

/** The owner cannot be reached, answered something else than the fill, or has no such fill any more. */
export class PeerFillError extends Error {
  constructor(
    message: string,
    /** 'gone': the owner answered that it neither fills nor holds the blob; 'failed': anything else. */
    readonly kind: 'gone' | 'failed',
  ) {
    super(message);
    this.name = 'PeerFillError';
  }
}

export interface PeerFillResponse {
  /** The blob's size when the owner knows it (announced by its upstream, or committed). */
  size: number | undefined;
  /** The bytes from the requested offset on; errors when cut short. */
  body: Readable;
}

export interface PeerTimeouts {
  connectMs: number;
  headersMs: number;
  /** Longest pause between two chunks of a body. */
  bodyIdleMs: number;
}

export class PeerClient {
  /** Made on the first request: a process that never follows a fill never loads undici. */
  private agentOnce: Agent | undefined;

  constructor(private readonly timeouts: PeerTimeouts) {}

  /** The bytes of the fill of `digest` at `ownerUrl` from `offset` on; PeerFillError when the owner does not answer with them. */
  async get(ownerUrl: string, digest: string, secret: string, offset: number): Promise<PeerFillResponse> {
    return this.send(ownerUrl, digest, secret, offset);
  }

  private agent(): Agent {
    const t = this.timeouts;
    return (this.agentOnce ??= new (undici().Agent)({ connect: { timeout: t.connectMs }, headersTimeout: t.headersMs, bodyTimeout: t.bodyIdleMs }));
  }

  async close(): Promise<void> {
    await this.agentOnce?.close();
  }

  private async send(ownerUrl: string, digest: string, secret: string, offset: number): Promise<PeerFillResponse> {
    const method = 'GET';
    const url = `${ownerUrl.replace(/\/+$/, '')}/internal/fills/${digest}`;
    let res;
    try {
      res = await undici().request(url, {
        method,
        dispatcher: this.agent(),
        headers: { [PEER_SECRET_HEADER]: secret, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
      });
    } catch (err) {
      throw new PeerFillError(`${method} ${url}: ${(err as Error).message}`, 'failed');
    }
    const ok = offset > 0 ? res.statusCode === 206 : res.statusCode === 200;
    if (!ok) {
      await res.body.dump().catch(() => {});
      throw new PeerFillError(`${method} ${url} answered ${res.statusCode}`, res.statusCode === 404 ? 'gone' : 'failed');
    }
    return { size: totalSize(res.headers), body: res.body as unknown as Readable };
  }
}

/** The blob's size from `Content-Range` (`bytes a-b/size`) or, without it, `Content-Length`. */
function totalSize(headers: Record<string, string | string[] | undefined>): number | undefined {
  const range = headers['content-range'];
  if (typeof range === 'string') {
    const m = /\/(\d+)$/.exec(range);
    return m ? Number(m[1]) : undefined;
  }
  const length = headers['content-length'];
  return typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : undefined;
}
