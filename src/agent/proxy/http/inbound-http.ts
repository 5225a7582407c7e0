/**
 * The L7 layer of an inbound HTTP port. Takes already-authorized connections (mTLS or
 * PERMISSIVE plaintext), speaks HTTP/1.1 or HTTP/2 (by ALPN), and per request: re-checks the
 * connection if policy or trust changed, normalises the path, strips forged identity headers,
 * validates the end-user JWT, asks the authorizer, then forwards to the app with the verified
 * caller identity. Denials carry only a Ward error code.
 */
import { createServer as createHttp1Server, request as httpRequest, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type Server as Http1Server, type ServerResponse } from 'node:http';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerHttp2Session } from 'node:http2';
import { loadHttp2 } from './lazy-http2.js';
import type { Socket } from 'node:net';
import type { RequestContext } from '../authorizer.js';
import type { LiveConnection } from '../live-connections.js';
import { splice } from '../forward.js';
import type { InboundDeps, InboundPortConfig } from '../inbound-config.js';
import { AppClient } from './app-client.js';
import { requestHeadersForApp, responseHeadersForCaller } from './headers.js';
import type { JwtVerifier } from './jwt.js';
import { normalizeRequestTarget } from './normalize-path.js';
import { IDENTITY_HEADER, identityHeaderValue, isIdentityHeaderName } from './xfcc.js';
import type { HeadField } from './h1-wire.js';
import type { VerifiedConnection } from './verified.js';
import { AppPool, LeanH1Connection, type Decided, type LeanHost } from './lean-h1.js';

export type { JwtVerifier };

export type { VerifiedConnection };

const CONN: unique symbol = Symbol('ward.verifiedConnection');
type Tagged = Socket & { [CONN]?: VerifiedConnection };

type Req = IncomingMessage | Http2ServerRequest;
type Allowed = Extract<Decided, { allow: true }> & { readonly request: RequestContext };
type Denied = Extract<Decided, { allow: false }>;
type Res = ServerResponse | Http2ServerResponse;

const STATUS_FOR: Readonly<Record<string, number>> = {
  ERR_AGENT_BAD_REQUEST: 400,
  ERR_AGENT_JWT_INVALID: 401,
  ERR_AGENT_REQUEST_DENIED: 403,
  ERR_AGENT_CONNECTION_DENIED: 403,
  ERR_AGENT_PEER_REVOKED: 403,
  ERR_AGENT_PEER_UNVERIFIED: 403,
  ERR_AGENT_UPSTREAM: 502,
};

/** gRPC status codes for the errors a call can be denied with. */
const GRPC_STATUS_FOR: Readonly<Record<string, string>> = {
  ERR_AGENT_BAD_REQUEST: '3', // INVALID_ARGUMENT
  ERR_AGENT_JWT_INVALID: '16', // UNAUTHENTICATED
  ERR_AGENT_UPSTREAM: '14', // UNAVAILABLE
};

export class HttpInbound {
  readonly #h1: Http1Server;
  /** Created on the first HTTP/2 connection: node:http2 costs ≈ 1.2 MB the HTTP/1.1-only agent never needs (ADR 0073). */
  #h2: Http2Server | undefined;
  readonly #app: AppClient;
  readonly #identity: string;
  readonly #allowed;
  readonly #denied;
  /** The lean HTTP/1.1 path (ADR 0043), for HTTP/1.1 callers of HTTP/1.1 apps. */
  readonly #lean: LeanHost | undefined;
  readonly #pool: AppPool | undefined;
  readonly #leanSockets = new Set<Socket>();

  constructor(
    private readonly config: InboundPortConfig,
    private readonly deps: InboundDeps,
  ) {
    const { limits } = deps;
    this.#app = new AppClient({ host: config.appHost, port: config.appPort, protocol: config.appProtocol }, limits.connectTimeoutMs);
    this.#identity = IDENTITY_HEADER;
    this.#allowed = deps.metrics.requests.labels('allowed');
    this.#denied = deps.metrics.requests.labels('denied');
    this.#h1 = createHttp1Server({
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: Math.min(limits.idleTimeoutMs, 60_000),
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      requireHostHeader: true,
      joinDuplicateHeaders: false,
      insecureHTTPParser: false,
    }, (req, res) => void this.#handle(req, res, false).catch(() => this.#failClosed(res)));
    // A caller that half-closes after its requests still gets the answers to those it sent in
    // full (llhttp refuses one cut short), then the connection ends; the sockets are half-open.
    (this.#h1 as Http1Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // No byte either way for idleTimeoutMs closes the connection, also while the app is slow to
    // answer: a caller that half-closed (and may be long gone) cannot hold it open for ever. Upgraded
    // connections leave the server and are bounded by the splice's own idle timeout.
    this.#h1.setTimeout(limits.idleTimeoutMs);
    this.#h1.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      this.#denied.inc();
      if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        const body = '{"code":"ERR_AGENT_BAD_REQUEST"}';
        socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
      socket.destroy();
    });
    // The server never listens (connections are handed over), so start its header/request
    // timeout sweeper the way `listen` would; it is what bounds slow-loris clients.
    this.#h1.emit('listening');
    this.#h1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.pause();
      void this.#upgrade(req, socket as Tagged, head).catch(() => this.#endRaw(socket, 'ERR_AGENT_REQUEST_DENIED'));
    });
    if (config.appProtocol === 'http1') {
      this.#pool = new AppPool(config.appHost, config.appPort);
      this.#lean = {
        maxHeaderBytes: limits.maxHeaderBytes,
        headersTimeoutMs: limits.headersTimeoutMs,
        requestTimeoutMs: limits.requestTimeoutMs,
        keepAliveMs: Math.min(limits.idleTimeoutMs, 60_000),
        decide: (verified, method, target, host, fields, started) => this.#decideLean(verified, method, target, host, fields, started),
        recordAllowed: (verified, method, path, status, policy, started) => this.#recordRequest(verified, method, path, status, 'allowed', policy, undefined, started),
        malformed: () => this.#denied.inc(),
        fallback: (socket, pending) => {
          socket.pause();
          if (pending !== undefined) socket.unshift(pending);
          this.#h1.emit('connection', socket);
          socket.resume();
        },
      };
    }
  }

  /**
   * An HTTP/1.1 `Connection: upgrade` request (WebSocket or any other token but `h2c`), handed
   * over by llhttp: decided like any request, forwarded to the app on a connection of its own;
   * a `101` from the app is relayed and the two connections are spliced (L4, idle timeout),
   * the connection then re-checked like an L4 one (revocation or a policy change closes it).
   * Any other answer is relayed and the connection closed. Denials answer the Ward code and close.
   */
  async #upgrade(req: IncomingMessage, socket: Tagged, head: Buffer): Promise<void> {
    const started = performance.now();
    const verified = socket[CONN];
    if (verified === undefined) {
      socket.destroy();
      return;
    }
    const method = req.method ?? '';
    const headers = req.headers;
    const protocols = String(headers.upgrade ?? '').toLowerCase().split(',').map((t) => t.trim());
    // A body would be read as the new protocol's bytes; h2c would carry requests no policy sees.
    if ((headers['content-length'] !== undefined && headers['content-length'] !== '0') || headers['transfer-encoding'] !== undefined || protocols.some((t) => t === 'h2c' || t.startsWith('h2c/'))) {
      this.#endRaw(socket, this.#leanDeny(verified, method, '', 'ERR_AGENT_BAD_REQUEST', 'none', started, true).code);
      return;
    }
    const fields: HeadField[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const raw = req.rawHeaders[i] as string;
      fields.push({ name: raw.toLowerCase(), raw, value: req.rawHeaders[i + 1] as string });
    }
    const decided = await this.#decideLean(verified, method, req.url ?? '', headers.host ?? '', fields, started);
    if (!decided.allow) {
      this.#endRaw(socket, decided.code);
      return;
    }
    if (socket.destroyed) return;
    if (this.config.appProtocol !== 'http1') {
      this.#endRaw(socket, 'ERR_AGENT_UPSTREAM');
      return;
    }
    const out = requestHeadersForApp(headers);
    out.host = headers.host;
    out.connection = 'upgrade';
    out.upgrade = headers.upgrade;
    if (decided.identity !== null) out[this.#identity] = decided.identity;
    const upstream = httpRequest({ host: this.config.appHost, port: this.config.appPort, method, path: decided.path + decided.query, headers: out, agent: false, setHost: false });
    const timer = setTimeout(() => upstream.destroy(), this.deps.limits.requestTimeoutMs);
    const gone = (): void => {
      upstream.destroy();
    };
    socket.once('close', gone);
    upstream.on('error', () => {
      clearTimeout(timer);
      this.#endRaw(socket, 'ERR_AGENT_UPSTREAM');
    });
    upstream.on('upgrade', (res: IncomingMessage, app: Socket, appHead: Buffer) => {
      clearTimeout(timer);
      socket.off('close', gone);
      // Half-closes pass through both ways: the app ending its side must not end the caller's
      // direction to it (the caller's socket is half-open already, see accept).
      app.allowHalfOpen = true;
      const relayed = responseHeadersForCaller(res.headers);
      relayed.connection = 'upgrade';
      if (res.headers.upgrade !== undefined) relayed.upgrade = res.headers.upgrade;
      socket.write(rawHead(101, res.statusMessage, relayed));
      if (appHead.length > 0) socket.write(appHead);
      if (head.length > 0) app.write(head);
      // From here on nothing is parsed: re-check it as an L4 connection, with the request it was
      // allowed for, whenever policy or trust changes.
      verified.live.l7 = false;
      verified.live.request = decided.request;
      socket.setTimeout(0); // the server's idle timer; the splice watches idleness itself
      this.#recordRequest(verified, method, decided.path, 101, 'allowed', decided.policy, undefined, started);
      splice(socket, app, this.deps.limits.idleTimeoutMs, () => undefined);
      // Allowed with an end-user JWT: the spliced connection ends when the token does.
      const exp = decided.request?.jwtClaims?.exp;
      if (typeof exp === 'number' && Number.isFinite(exp)) this.#closeAt(verified.live, socket, exp * 1000);
    });
    upstream.on('response', (res: IncomingMessage) => {
      clearTimeout(timer);
      const relayed = responseHeadersForCaller(res.headers);
      // The body arrives de-chunked; without a Content-Length it ends with the connection.
      delete relayed['transfer-encoding'];
      relayed.connection = 'close';
      socket.write(rawHead(res.statusCode ?? 502, res.statusMessage, relayed));
      res.on('data', (chunk: Buffer) => {
        if (!socket.write(chunk)) {
          res.pause();
          socket.once('drain', () => res.resume());
        }
      });
      res.once('end', () => socket.end(() => socket.destroy()));
      res.once('error', () => socket.destroy());
      this.#recordRequest(verified, method, decided.path, res.statusCode ?? 502, 'allowed', decided.policy, undefined, started);
    });
    upstream.end();
  }

  /** Answers `{"code":…}` with the code's status on a raw (detached) HTTP/1.1 socket, then closes it. */
  #endRaw(socket: Socket, code: string): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = `{"code":"${code}"}`;
    const status = STATUS_FOR[code] ?? 403;
    socket.end(rawHead(status, undefined, { 'content-type': 'application/json', 'content-length': body.length, connection: 'close' }) + body, () => socket.destroy());
  }

  /** The decision of both HTTP/1.1 paths; an allowed one also carries the context decided on. */
  #decideLean(verified: VerifiedConnection, method: string, target: string, host: string, fields: readonly HeadField[], started: number): Allowed | Denied | Promise<Allowed | Denied> {
    const { live, authorizers, trust } = this.deps;
    if (verified.live.epoch !== live.epoch) {
      const reason = live.verdict(verified.live);
      if (reason !== undefined) return this.#leanDeny(verified, method, '', reason, 'connection', started, true);
      verified.live.epoch = live.epoch;
    }
    const t = normalizeRequestTarget(target);
    if (!t.ok) return this.#leanDeny(verified, method, '', 'ERR_AGENT_BAD_REQUEST', 'none', started, true);
    const headers: Record<string, string | string[] | undefined> = {};
    for (const f of fields) {
      if (isIdentityHeaderName(f.name)) continue;
      const prev = headers[f.name];
      if (prev === undefined) headers[f.name] = f.value;
      else if (f.name === 'set-cookie') headers[f.name] = Array.isArray(prev) ? [...prev, f.value] : [prev, f.value];
      else headers[f.name] = `${prev as string}, ${f.value}`;
    }
    const finish = (claims: Record<string, unknown> | undefined): Allowed | Denied => {
      const request: RequestContext = { connection: verified.ctx, method, path: t.path, host, headers, jwtClaims: claims };
      const decision = authorizers.current.authorizeRequest(request);
      if (!decision.allow) return this.#leanDeny(verified, method, t.path, 'ERR_AGENT_REQUEST_DENIED', decision.reference, started, false);
      this.#allowed.inc();
      const identity = verified.spiffeId === undefined ? null : verified.identityHeader ??= identityHeaderValue(trust.spiffeId, verified.spiffeId, verified.fingerprint256);
      return { allow: true, path: t.path, query: t.query, identity, policy: decision.reference, request };
    };
    const authorization = headers.authorization;
    const jwt = this.deps.jwt;
    if (jwt !== undefined && typeof authorization === 'string' && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
      return jwt.verify(authorization.slice(7).trim()).then((claims) => claims === undefined
        ? this.#leanDeny(verified, method, t.path, 'ERR_AGENT_JWT_INVALID', 'none', started, false)
        : finish(claims));
    }
    return finish(undefined);
  }

  #leanDeny(verified: VerifiedConnection, method: string, path: string, code: string, reference: string, started: number, closeAfter: boolean): Denied {
    this.#denied.inc();
    const status = STATUS_FOR[code] ?? 403;
    this.#recordRequest(verified, method, path, status, 'denied', reference, code, started);
    return { allow: false, code, status, closeAfter: closeAfter || status === 400 };
  }

  /** Closes an upgraded connection at `at` (the JWT's `exp`), through the live registry. */
  #closeAt(live: LiveConnection, socket: Socket, at: number): void {
    const MAX_TIMER_MS = 2_147_483_647;
    let timer: NodeJS.Timeout;
    const arm = (): void => {
      const delay = at - this.deps.clock.now();
      if (delay <= 0) {
        this.deps.live.expire(live, 'ERR_AGENT_JWT_INVALID');
        return;
      }
      timer = setTimeout(arm, Math.min(delay, MAX_TIMER_MS));
      timer.unref();
    };
    socket.once('close', () => clearTimeout(timer));
    arm();
  }

  /**
   * Hands over an authorized connection: HTTP/2 when ALPN chose `h2` or when `h2c` (a plaintext
   * connection that opened with the HTTP/2 preface, see detect.ts), else HTTP/1.1.
   */
  #h2Server(): Http2Server {
    if (this.#h2 !== undefined) return this.#h2;
    const { limits } = this.deps;
    const h2 = loadHttp2().createServer({
      maxSessionMemory: 10,
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes, enablePush: false },
      maxHeaderListPairs: 128,
    }, (req, res) => void this.#handle(req, res, true).catch(() => this.#failClosed(res)));
    h2.setTimeout(limits.idleTimeoutMs);
    h2.on('sessionError', () => undefined);
    this.#h2 = h2;
    return h2;
  }

  accept(socket: Socket, verified: VerifiedConnection, h2c = false): void {
    (socket as Tagged)[CONN] = verified;
    socket.setNoDelay(true);
    // Half-open (both planes: the TLS socket of the Node plane, the relay's socketpair end), so
    // the caller's FIN (on TLS close_notify + FIN) does not end this side before the answers to
    // what it sent are out; each HTTP path ends it after its last answer. Set before any read.
    socket.allowHalfOpen = true;
    if (h2c || (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2') this.#acceptH2(socket);
    else if (this.#lean !== undefined && this.#pool !== undefined) {
      this.#leanSockets.add(socket);
      socket.once('close', () => this.#leanSockets.delete(socket));
      new LeanH1Connection(socket, verified, this.#lean, this.#pool).start();
      return;
    } else this.#h1.emit('connection', socket);
    socket.resume();
  }

  /**
   * An HTTP/2 connection. A caller that half-closes gets its session closed gracefully: streams
   * in flight finish and are answered, a GOAWAY refuses new ones, then the connection ends.
   */
  #acceptH2(socket: Socket): void {
    const server = this.#h2Server();
    let session: ServerHttp2Session | undefined;
    const grab = (s: ServerHttp2Session): void => {
      session = s;
    };
    server.once('session', grab);
    server.emit('connection', socket);
    server.off('session', grab);
    socket.once('end', () => {
      if (session !== undefined && !session.closed && !session.destroyed) session.close();
    });
  }

  async close(): Promise<void> {
    this.#app.close();
    this.#pool?.close();
    for (const s of this.#leanSockets) s.destroy();
    this.#h1.closeAllConnections();
    await Promise.all([
      new Promise<void>((r) => this.#h1.close(() => r())),
      new Promise<void>((r) => (this.#h2 === undefined ? r() : this.#h2.close(() => r()))),
    ]);
  }

  async #handle(req: Req, res: Res, h2: boolean): Promise<void> {
    const started = performance.now();
    const socket = (h2 ? (req as Http2ServerRequest).stream.session?.socket : req.socket) as Tagged | undefined;
    const verified = socket?.[CONN];
    if (verified === undefined) {
      res.destroy();
      return;
    }
    const { live, authorizers, trust } = this.deps;
    const headers = req.headers;
    const method = req.method ?? '';
    const grpc = h2 && typeof headers['content-type'] === 'string' && headers['content-type'].startsWith('application/grpc');
    if (verified.live.epoch !== live.epoch) {
      const reason = live.verdict(verified.live);
      if (reason !== undefined) {
        this.#deny(req, res, grpc, reason, 'connection', started, '');
        // Closed after the answer: the caller learns why, and the connection goes.
        res.once('finish', () => socket?.destroy());
        return;
      }
      verified.live.epoch = live.epoch;
    }
    const target = normalizeRequestTarget(req.url ?? '');
    if (!target.ok || (!h2 && headers['transfer-encoding'] !== undefined && headers['content-length'] !== undefined)) {
      this.#deny(req, res, grpc, 'ERR_AGENT_BAD_REQUEST', 'none', started, '');
      return;
    }
    const host = (h2 ? (headers[':authority'] ?? headers.host) : headers.host) as string | undefined ?? '';
    for (const name in headers) if (isIdentityHeaderName(name)) delete headers[name];
    let claims: Record<string, unknown> | undefined;
    const authorization = headers.authorization;
    const jwt = this.deps.jwt;
    if (jwt !== undefined && typeof authorization === 'string' && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
      claims = await jwt.verify(authorization.slice(7).trim());
      if (claims === undefined) {
        this.#deny(req, res, grpc, 'ERR_AGENT_JWT_INVALID', 'none', started, target.path);
        return;
      }
    }
    const decision = authorizers.current.authorizeRequest({ connection: verified.ctx, method, path: target.path, host, headers, jwtClaims: claims });
    if (!decision.allow) {
      this.#deny(req, res, grpc, 'ERR_AGENT_REQUEST_DENIED', decision.reference, started, target.path);
      return;
    }
    this.#allowed.inc();
    const out = requestHeadersForApp(headers);
    out.host = host;
    if (verified.spiffeId !== undefined) out[this.#identity] = verified.identityHeader ??= identityHeaderValue(trust.spiffeId, verified.spiffeId, verified.fingerprint256);
    const path = target.path + target.query;
    const onDone = (): void => this.#recordRequest(verified, method, target.path, res.statusCode, 'allowed', decision.reference, undefined, started);
    if (this.config.appProtocol === 'h2c') this.#forwardH2(req, res, method, path, out, onDone);
    else this.#forwardH1(req, res, method, path, out, onDone);
  }

  #forwardH1(req: Req, res: Res, method: string, path: string, headers: Record<string, unknown>, onDone: () => void): void {
    const upstream = this.#app.requestHttp1(method, path, headers as never);
    const out = res as ServerResponse;
    upstream.on('response', (up) => {
      const headers = responseHeadersForCaller(up.headers);
      out.writeHead(up.statusCode ?? 502, headers as never);
      // Hand-rolled instead of pipe(): a pipe's listener set-up dominates small responses.
      up.on('data', (chunk: Buffer) => {
        if (!out.write(chunk)) {
          up.pause();
          out.once('drain', () => up.resume());
        }
      });
      up.on('end', () => {
        if (up.rawTrailers.length > 0) out.addTrailers(up.trailers as never);
        out.end();
      });
      up.on('error', () => out.destroy());
    });
    upstream.on('error', () => this.#upstreamFailed(req, res));
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
      onDone();
    });
    // HTTP/1.1 requests without Content-Length or Transfer-Encoding have no body (RFC 9112 §6.3).
    if (req.httpVersionMajor === 1 && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      req.resume();
      upstream.end();
    } else {
      req.pipe(upstream);
    }
  }

  #forwardH2(req: Req, res: Res, method: string, path: string, headers: Record<string, unknown>, onDone: () => void): void {
    const h2Headers: Record<string, unknown> = { ...headers, ':method': method, ':path': path, ':scheme': 'http', ':authority': headers.host };
    delete h2Headers.host;
    let stream;
    try {
      stream = this.#app.requestH2(h2Headers as never);
    } catch {
      this.#upstreamFailed(req, res);
      return;
    }
    stream.on('response', (h) => {
      const status = Number(h[':status'] ?? 502);
      res.writeHead(status, responseHeadersForCaller(h as never) as never);
    });
    stream.on('trailers', (t) => {
      const trailers: Record<string, unknown> = {};
      for (const k in t) if (k.charCodeAt(0) !== 0x3a) trailers[k] = t[k];
      (res as Http2ServerResponse).addTrailers(trailers as never);
    });
    stream.on('error', () => this.#upstreamFailed(req, res));
    res.once('close', () => {
      if (!res.writableFinished) stream.close();
      onDone();
    });
    stream.pipe(res as Http2ServerResponse);
    req.pipe(stream);
  }

  /** A request whose decision threw (an authorizer bug): denied and the connection closed. */
  #failClosed(res: Res): void {
    this.#denied.inc();
    if (res.headersSent || 'stream' in res) {
      res.destroy();
      return;
    }
    const body = '{"code":"ERR_AGENT_REQUEST_DENIED"}';
    res.writeHead(403, { 'content-type': 'application/json', 'content-length': body.length, connection: 'close' });
    res.end(body);
  }

  #upstreamFailed(req: Req, res: Res): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const grpc = typeof req.headers['content-type'] === 'string' && req.headers['content-type'].startsWith('application/grpc');
    this.#writeDeny(res, grpc, 'ERR_AGENT_UPSTREAM');
  }

  #deny(req: Req, res: Res, grpc: boolean, code: string, reference: string, started: number, path: string): void {
    this.#denied.inc();
    this.#writeDeny(res, grpc, code);
    // Drain a small body so keep-alive survives; large ones are cut by the connection close.
    req.resume();
    const verified = ((req.httpVersionMajor === 2 ? (req as Http2ServerRequest).stream.session?.socket : req.socket) as Tagged | undefined)?.[CONN];
    if (verified !== undefined) this.#recordRequest(verified, req.method ?? '', path, STATUS_FOR[code] ?? 403, 'denied', reference, code, started);
  }

  #writeDeny(res: Res, grpc: boolean, code: string): void {
    if (grpc) {
      const stream = (res as Http2ServerResponse).stream;
      if (!stream.headersSent && !stream.destroyed) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': GRPC_STATUS_FOR[code] ?? '7', 'grpc-message': code }, { endStream: true });
      }
      return;
    }
    const status = STATUS_FOR[code] ?? 403;
    const body = `{"code":"${code}"}`;
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': body.length };
    if (status === 400 && res instanceof Object && !('stream' in res)) headers.connection = 'close';
    res.writeHead(status, headers as never);
    res.end(body);
  }

  #recordRequest(verified: VerifiedConnection, method: string, path: string, status: number, verdict: 'allowed' | 'denied', policy: string, reason: string | undefined, started: number): void {
    const latencyMs = performance.now() - started;
    if (verdict === 'allowed') this.deps.metrics.requestDuration.observe(latencyMs / 1000);
    this.deps.events.record({
      class: 'http_activity',
      time: this.deps.clock.now(),
      source: verified.ctx.source.spiffeId,
      destination: this.deps.trust.spiffeId,
      port: verified.ctx.port,
      method,
      path,
      status,
      verdict,
      policy,
      ...(reason === undefined ? {} : { reason }),
      latencyMs,
    });
  }
}

/** An HTTP/1.1 response head from a header object (values already checked by llhttp). */
function rawHead(status: number, message: string | undefined, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 ${status} ${message ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${String(v)}\r\n`;
  }
  return `${head}\r\n`;
}
