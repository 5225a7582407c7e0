/** Small real-socket helpers for agent tests: apps on loopback, mTLS clients, bounded waits. */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createServer as createHttpServer, request, type Agent, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import type { TestSvid } from './pki.js';

/** A TCP echo app; returns its port. */
export async function startEchoApp(): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    server,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/**
 * A TCP app that answers only once the caller has half-closed: it counts what it read and, on
 * EOF, replies `got <n>` after 300 ms, then ends (tests that half-close passes through).
 */
export async function startReplyOnEofApp(): Promise<{ port: number; close(): void }> {
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    let n = 0;
    sock.on('data', (c: Buffer) => (n += c.length));
    sock.on('end', () => setTimeout(() => sock.end(`got ${n}`), 300));
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP/1.1 app that answers `200 ok <path>` and records what it received. */
export async function startHttpApp(): Promise<{ port: number; seen: SeenRequest[]; server: HttpServer; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok ${req.url}`);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    server,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export function mtlsConnect(port: number, svid: TestSvid, caPem: string, alpn?: string[]): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, cert: svid.certPem, key: svid.keyPem, ca: caPem, checkServerIdentity: () => undefined, ALPNProtocols: alpn });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

export function plainConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `data` and collects what comes back until `expected` bytes arrive, the socket closes, or the time runs out. */
export function roundTrip(socket: Socket, data: string | Buffer, expectedBytes: number, timeoutMs = 3000): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    let got = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve({ data: got, closed });
    };
    const onData = (c: Buffer): void => {
      got += c.toString('latin1');
      if (got.length >= expectedBytes) finish(false);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', onData);
    socket.once('close', () => finish(true));
    socket.once('error', () => finish(true));
    if (data.length > 0) socket.write(data);
  });
}

/** Resolves when `socket` closes (true) or after `timeoutMs` (false). */
export function waitClose(socket: Socket, timeoutMs = 3000): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  socket.resume();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** One GET to `127.0.0.1:port`; a fresh connection unless a keep-alive `agent` is given. */
export function httpGet(port: number, path: string, agent: Agent | false = false, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.end();
  });
}
