/**
 * A TCP forwarder on 127.0.0.1 that puts a network's round-trip time between its clients and a server
 * on loopback, for benchmarks of clients that talk to a remote registry:
 *
 *   client ──► forwarder (127.0.0.1:<port>) ──[+rtt/2]──► target
 *   client ◄──[+rtt/2]── forwarder ◄── target
 *
 * Guarantees: every byte goes through unchanged and in order, in both directions, as does the end of
 * each direction (a half-close) and a reset (one side's error destroys the other). Each chunk leaves
 * half the RTT after it arrived. A new connection pays one RTT before its first byte leaves towards
 * the target, as a TCP handshake does: on a network the client's `connect` returns after one RTT and
 * its first request arrives half an RTT later, so a request on a new connection is answered after two
 * RTTs and one on a kept-alive connection after one. It delays only: no bandwidth limit, no loss.
 * A direction that holds more than `HIGH_WATER` bytes not yet sent pauses its source until it drains.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

const HIGH_WATER = 4 * 1024 * 1024;

export class LatencyForwarder {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted so far. */
  connections = 0;

  /**
   * @param target host and port of the server behind the forwarder
   * @param rttMs the round-trip time to add (0 forwards without delay)
   */
  constructor(
    readonly target: { host: string; port: number },
    readonly rttMs: number,
  ) {}

  /** Listens on 127.0.0.1 at a free port; returns `host:port`, the address clients use. */
  async start(): Promise<string> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (!address || typeof address !== 'object') throw new Error('the latency forwarder has no address');
    return `127.0.0.1:${address.port}`;
  }

  /** Stops listening and destroys every open connection. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.connections++;
    const acceptedAt = performance.now();
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true, noDelay: true });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.once('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const half = this.rttMs / 2;
    // Towards the target: not before the handshake's round trip, then half of one.
    pipeDelayed(client, upstream, (arrived) => Math.max(arrived, acceptedAt + this.rttMs) + half);
    pipeDelayed(upstream, client, (arrived) => arrived + half);
    client.resume();
  }
}

/**
 * Copies `from` to `to`, each chunk (and the end) written at `due(arrival)` (performance.now() ms;
 * `due` must not decrease as arrivals increase): one queue and one timer, so the order is kept.
 */
function pipeDelayed(from: Socket, to: Socket, due: (arrivedMs: number) => number): void {
  const queue: Array<{ at: number; chunk: Buffer | null }> = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && queue[0]!.at <= now + 0.5) {
      const { chunk } = queue.shift()!;
      if (to.destroyed) return;
      if (chunk === null) {
        to.end();
        return;
      }
      queued -= chunk.length;
      to.write(chunk);
    }
    if (from.isPaused() && queued < HIGH_WATER / 2) from.resume();
    if (queue.length) timer = setTimeout(flush, Math.max(0, queue[0]!.at - performance.now()));
  };
  const push = (chunk: Buffer | null) => {
    queue.push({ at: due(performance.now()), chunk });
    if (chunk) {
      queued += chunk.length;
      if (queued >= HIGH_WATER) from.pause();
    }
    if (!timer) timer = setTimeout(flush, Math.max(0, queue[0]!.at - performance.now()));
  };
  from.on('data', (chunk: Buffer) => push(chunk));
  from.once('end', () => push(null));
  // Only once `to` is gone is there nothing left to deliver (`from` may close with chunks still queued).
  to.once('close', () => {
    if (timer) clearTimeout(timer);
  });
}
