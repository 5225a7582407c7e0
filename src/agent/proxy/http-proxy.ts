/**
 * The outbound HTTP proxy mode, for apps that honour `HTTP_PROXY`: `CONNECT orders:443` opens
 * an mTLS tunnel to the named service; absolute-form requests (`GET http://orders/x`) are
 * forwarded over a fresh mTLS connection. Either way egress policy is checked first and the
 * server's SPIFFE ID must be one the service may present. Unknown services are refused.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isWardError } from '../../core/errors.js';
import { openOutbound, type OutboundDeps } from './outbound.js';
import { connectUpstream, type UpstreamService } from './upstream-tls.js';
import { requestHeadersForApp, responseHeadersForCaller } from './http/headers.js';

function refuse(socket: Socket, status: number, code: string): void {
  const body = `{"code":"${code}"}`;
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 502 ? 'Bad Gateway' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
}

export class HttpProxyListener {
  readonly #server: Server;
  readonly #services: ReadonlyMap<string, UpstreamService>;

  constructor(services: readonly UpstreamService[], readonly listenPort: number, private readonly deps: OutboundDeps, readonly listenHost = '127.0.0.1') {
    this.#services = new Map(services.map((s) => [s.name.toLowerCase(), s]));
    this.#server = createServer({ maxHeaderSize: deps.limits.maxHeaderBytes, headersTimeout: deps.limits.headersTimeoutMs, requestTimeout: deps.limits.requestTimeoutMs }, (req, res) => void this.#onRequest(req, res));
    this.#server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onConnect(req, socket, head));
    this.#server.on('clientError', (_e, socket: Socket) => refuse(socket, 400, 'ERR_AGENT_BAD_REQUEST'));
  }

  /** `orders`, `orders:443`, `orders.svc:8080` → the service named by the first label-less host. */
  #lookup(hostPort: string): UpstreamService | undefined {
    const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(hostPort);
    if (m === null) return undefined;
    return this.#services.get((m[1] as string).toLowerCase());
  }

  #onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const service = this.#lookup(req.url ?? '');
    if (service === undefined) {
      this.deps.metrics.connections.labels('outbound', 'denied').inc();
      refuse(socket, 403, 'ERR_AGENT_CONNECTION_DENIED');
      return;
    }
    if (head.length > 0) socket.unshift(head);
    void openOutbound(socket, service, this.port, this.deps, () => socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')).then((ok) => {
      if (!ok && !socket.destroyed) refuse(socket, 403, 'ERR_AGENT_CONNECTION_DENIED');
    });
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      this.#answer(res, 400, 'ERR_AGENT_BAD_REQUEST');
      return;
    }
    const service = url.protocol === 'http:' ? this.#lookup(url.host) : undefined;
    const { trust, authorizers, metrics } = this.deps;
    const decision = service === undefined ? undefined : authorizers.current.authorizeConnection({
      direction: 'outbound', source: { spiffeId: trust.spiffeId, authenticated: true, attributes: {} }, destination: service.name, port: this.port,
    });
    if (service === undefined || decision === undefined || !decision.allow) {
      metrics.connections.labels('outbound', 'denied').inc();
      this.#answer(res, 403, 'ERR_AGENT_CONNECTION_DENIED');
      return;
    }
    let up;
    try {
      up = await connectUpstream(service, trust, this.deps.limits.connectTimeoutMs);
    } catch (error) {
      metrics.connections.labels('outbound', 'rejected').inc();
      this.#answer(res, 502, isWardError(error) ? error.code : 'ERR_AGENT_UPSTREAM');
      return;
    }
    metrics.connections.labels('outbound', 'allowed').inc();
    const headers = requestHeadersForApp(req.headers);
    headers.host = url.host;
    headers.connection = 'close';
    const upReq = httpRequest({ createConnection: () => up.socket, method: req.method, path: `${url.pathname}${url.search}`, headers, setHost: false });
    upReq.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, responseHeadersForCaller(upRes.headers));
      upRes.pipe(res);
    });
    upReq.on('error', () => {
      if (!res.headersSent) this.#answer(res, 502, 'ERR_AGENT_UPSTREAM');
      else res.destroy();
    });
    res.once('close', () => up.socket.destroy());
    req.pipe(upReq);
  }

  #answer(res: ServerResponse, status: number, code: string): void {
    const body = `{"code":"${code}"}`;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.listenPort, this.listenHost, () => {
        this.#server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
