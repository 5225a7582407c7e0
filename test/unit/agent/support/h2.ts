/** HTTP/2 client helpers for the L7 tests. */
import assert from 'node:assert/strict';
import { createServer as createH2cServer, type ClientHttp2Session, type Http2Server } from 'node:http2';

export interface H2Answer {
  headers: Record<string, unknown>;
  trailers: Record<string, unknown>;
  body: string;
}

/** Sends one request on `session` and collects the answer's headers, trailers and body. */
export function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: Buffer): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let responseHeaders: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    let data = '';
    req.on('response', (hd) => (responseHeaders = hd as Record<string, unknown>));
    req.on('trailers', (t) => (trailers = t as Record<string, unknown>));
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => resolve({ headers: responseHeaders, trailers, body: data }));
    req.on('error', reject);
    req.end(body);
  });
}

/** A cleartext HTTP/2 gRPC-ish app: answers every call with one empty message and `grpc-status: 0` in trailers. */
export async function startGrpcApp(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Http2Server = createH2cServer();
  server.on('stream', (stream) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * Starts a gRPC app and an agent in front of it (`startAgent`), opens a session to the agent
 * (`connect`), and asserts that a call to `allowed` reaches the app (grpc-status 0) and one to
 * `denied` gets grpc-status 7 from the agent.
 */
export async function assertGrpcThroughAgent(
  startAgent: (appPort: number) => Promise<{ port: number; close(): Promise<void> }>,
  connect: (port: number) => Promise<ClientHttp2Session>,
  allowed: string,
  denied: string,
): Promise<void> {
  const app = await startGrpcApp();
  const agent = await startAgent(app.port);
  const session = await connect(agent.port);
  try {
    await assertGrpcAllowedAndDenied(session, allowed, denied);
  } finally {
    session.close();
    await agent.close();
    await app.close();
  }
}

async function assertGrpcAllowedAndDenied(session: ClientHttp2Session, allowed: string, denied: string): Promise<void> {
  const frame = Buffer.from([0, 0, 0, 0, 0]);
  const ok = await h2Request(session, { ':method': 'POST', ':path': allowed, 'content-type': 'application/grpc', te: 'trailers' }, frame);
  assert.equal(ok.headers[':status'], 200);
  assert.equal(ok.trailers['grpc-status'], '0');
  const no = await h2Request(session, { ':method': 'POST', ':path': denied, 'content-type': 'application/grpc', te: 'trailers' }, frame);
  assert.equal(no.headers[':status'], 200);
  assert.equal(no.headers['grpc-status'], '7');
  assert.equal(no.headers['grpc-message'], 'ERR_AGENT_REQUEST_DENIED');
}
