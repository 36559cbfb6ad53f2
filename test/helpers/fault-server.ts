/**
 * A tiny fake upstream registry (node:http on 127.0.0.1) for faults a real registry cannot produce:
 * auth challenges, wrong digests, truncated bodies, stalls, 5xx, 429, redirects. Each test supplies the
 * handler; the server records every request it received so tests can assert what reached the wire.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export type FaultHandler = (req: IncomingMessage, res: ServerResponse, server: FaultServer) => void | Promise<void>;

export interface FaultServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port> */
  host: string;
  port: number;
  requests: RecordedRequest[];
  /** Requests whose path starts with `prefix`. */
  count(prefix?: string): number;
  /** Replaces the handler. */
  setHandler(handler: FaultHandler): void;
  close(): Promise<void>;
}

/** `tls`: serve https with this key and certificate (PEM), e.g. from test/helpers/tls.ts. */
export async function startFaultServer(handler: FaultHandler, opts: { host?: string; tls?: { key: string; cert: string } } = {}): Promise<FaultServer> {
  let current = handler;
  const sockets = new Set<Socket>();
  const requests: RecordedRequest[] = [];
  const listener: RequestListener = (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    Promise.resolve(current(req, res, api)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(599).end(String(err));
      else res.destroy();
    });
  };
  const server: Server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, listener) : createServer(listener);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  const { port, address } = server.address() as AddressInfo;
  const api: FaultServer = {
    url: `${opts.tls ? 'https' : 'http'}://${address}:${port}`,
    host: `${address}:${port}`,
    port,
    requests,
    count: (prefix = '') => requests.filter((r) => r.url.startsWith(prefix)).length,
    setHandler: (h) => (current = h),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return api;
}

/** Writes an OCI error envelope. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }).end(body);
}
