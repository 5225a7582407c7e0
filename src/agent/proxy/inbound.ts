/**
 * The inbound stack for one port, top to bottom:
 *   accept → detect (PERMISSIVE only: TLS, h2c prior knowledge on HTTP ports, plaintext)
 *   → tls (mTLS, full X509-SVID checks of the peer, cached per certificate) → authorize (L4)
 *   → forward (tcp ports) | http (L7 ports, per-request decisions).
 */
import type { PeerCertificateLike } from '../../pki/svid-verify.js';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import { UNAUTHENTICATED, type ConnectionContext, type PeerIdentity } from './authorizer.js';
import { detectProtocol } from './detect.js';
import { splice } from './forward.js';
import type { LiveConnection } from './live-connections.js';
import { ALPN_PROTOCOLS } from './trust.js';
import { HttpInbound, type VerifiedConnection } from './http/inbound-http.js';
import type { InboundDeps, InboundPortConfig } from './inbound-config.js';

export type { InboundDeps, InboundPortConfig };

export class InboundListener {
  readonly #server: Server;
  readonly #tls: TlsServer;
  readonly #http: HttpInbound | undefined;
  readonly #unsubscribe: () => void;
  /** The bound port (the configured one, or the OS's choice for port 0): what policies and events see. */
  #port = 0;

  constructor(
    readonly config: InboundPortConfig,
    private readonly deps: InboundDeps,
  ) {
    const { trust, limits } = deps;
    this.#tls = new TlsServer({
      ...trust.contextOptions,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: limits.handshakeTimeoutMs,
      ALPNProtocols: config.protocol === 'http' ? [...ALPN_PROTOCOLS] : undefined,
    });
    this.#unsubscribe = trust.onChange((what) => {
      if (what === 'material') this.#tls.setSecureContext(trust.contextOptions);
    });
    this.#tls.on('secureConnection', (socket: TLSSocket) => this.#onSecure(socket));
    this.#tls.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      const reason = error.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || /certificate/i.test(error.message) ? 'ERR_AGENT_PEER_UNVERIFIED' : 'tls_error';
      deps.metrics.handshakeFailures.labels('inbound', reason).inc();
      deps.metrics.connections.labels('inbound', 'rejected').inc();
      socket.destroy();
    });
    this.#http = config.protocol === 'http' ? new HttpInbound(config, deps) : undefined;
    this.#server = createServer({ pauseOnConnect: config.mode === 'PERMISSIVE' }, (socket) => void this.#onAccept(socket));
    this.#server.maxConnections = limits.maxConnections;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.config.port, this.config.host, () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as { port: number }).port;
        resolve(this.#port);
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#http?.close();
  }

  async #onAccept(socket: Socket): Promise<void> {
    socket.on('error', () => socket.destroy());
    if (this.config.mode === 'STRICT') {
      this.#tls.emit('connection', socket);
      return;
    }
    socket.resume();
    const detected = await detectProtocol(socket, this.deps.limits.detectTimeoutMs, { h2c: this.#http !== undefined });
    if (detected === undefined) {
      socket.destroy();
      return;
    }
    if (detected === 'tls') {
      this.#tls.emit('connection', socket);
      return;
    }
    const peer: PeerIdentity = { spiffeId: UNAUTHENTICATED, authenticated: false, attributes: {}, ...addressOf(socket) };
    this.#authorized(socket, peer, undefined, undefined, detected === 'h2c');
  }

  #onSecure(socket: TLSSocket): void {
    const { metrics } = this.deps;
    // rejectUnauthorized already failed unverified chains; check again, fail closed.
    if (!socket.authorized) {
      metrics.handshakeFailures.labels('inbound', 'ERR_AGENT_PEER_UNVERIFIED').inc();
      metrics.connections.labels('inbound', 'rejected').inc();
      socket.destroy();
      return;
    }
    const cert = socket.getPeerX509Certificate();
    const check = this.deps.trust.checkPeer(cert);
    if (!check.ok) {
      metrics.handshakeFailures.labels('inbound', check.reason).inc();
      metrics.connections.labels('inbound', 'rejected').inc();
      this.#record(UNAUTHENTICATED, 'rejected', 'none', check.reason, 0, 0, 0);
      socket.destroy();
      return;
    }
    const peer: PeerIdentity = { spiffeId: check.spiffeId, authenticated: true, attributes: {}, ...addressOf(socket) };
    // Live connections keep the verifier's shared copy of the chain, not this handshake's certificate.
    this.#authorized(socket, peer, check.chain ?? cert, { spiffeId: check.spiffeId, fingerprint256: check.fingerprint256, serial: check.serial });
  }

  #authorized(socket: Socket, peer: PeerIdentity, cert: PeerCertificateLike | undefined, verified: Omit<VerifiedConnection, 'ctx' | 'live'> | undefined, h2c = false): void {
    const { authorizers, metrics, live, clock } = this.deps;
    const ctx: ConnectionContext = { direction: 'inbound', source: peer, destination: this.deps.trust.spiffeId, port: this.#port };
    const decision = authorizers.current.authorizeConnection(ctx);
    if (!decision.allow) {
      metrics.connections.labels('inbound', 'denied').inc();
      this.#record(peer.spiffeId, 'denied', decision.reference, 'ERR_AGENT_CONNECTION_DENIED', 0, 0, 0);
      socket.destroy();
      return;
    }
    metrics.connections.labels('inbound', 'allowed').inc();
    const started = clock.now();
    const conn: LiveConnection = {
      ctx,
      cert,
      serial: verified?.serial,
      l7: this.#http !== undefined,
      epoch: 0,
      close: () => socket.destroy(),
    };
    live.add(conn);
    const active = metrics.activeConnections.labels('inbound');
    active.inc();
    const onDone = (bytesIn: number, bytesOut: number): void => {
      live.delete(conn);
      active.dec();
      metrics.bytes.labels('inbound', 'rx').inc(bytesIn);
      metrics.bytes.labels('inbound', 'tx').inc(bytesOut);
      this.#record(peer.spiffeId, 'allowed', decision.reference, undefined, bytesIn, bytesOut, clock.now() - started);
    };
    if (this.#http !== undefined) {
      socket.once('close', () => onDone(socket.bytesRead, socket.bytesWritten));
      this.#http.accept(socket, { ctx, live: conn, spiffeId: peer.authenticated ? peer.spiffeId : undefined, fingerprint256: verified?.fingerprint256, serial: verified?.serial }, h2c);
      return;
    }
    const app = connect({ host: this.config.appHost, port: this.config.appPort });
    app.setTimeout(this.deps.limits.connectTimeoutMs, () => app.destroy());
    app.once('connect', () => app.setTimeout(0));
    splice(socket, app, this.deps.limits.idleTimeoutMs, (r) => onDone(r.bytesIn, r.bytesOut));
  }

  #record(source: string, verdict: 'allowed' | 'denied' | 'rejected', policy: string, reason: string | undefined, bytesIn: number, bytesOut: number, durationMs: number): void {
    this.deps.events.record({
      class: 'network_activity',
      time: this.deps.clock.now(),
      direction: 'inbound',
      source,
      destination: this.deps.trust.spiffeId,
      port: this.#port,
      verdict,
      policy,
      ...(reason === undefined ? {} : { reason }),
      bytesIn,
      bytesOut,
      durationMs,
    });
  }
}

/** The peer's address for `ipBlocks`/`source.ip` rules (absent on a socket already closed). */
function addressOf(socket: Socket): { address?: string } {
  const address = socket.remoteAddress;
  return address === undefined ? {} : { address };
}
