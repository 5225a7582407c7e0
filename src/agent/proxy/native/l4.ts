/**
 * The native L4 data plane (ADR 0049): STRICT `protocol: tcp` inbound ports and outbound
 * upstreams whose bytes and TLS run in the relay addon's thread, with every decision made
 * here, by the same code paths the Node layers use:
 *
 *   inbound:  relay accepts + TLS handshake (chain checked by OpenSSL against the bundle)
 *             → Peer event (the verified chain) → trust.checkPeer (X509-SVID rules, revocation)
 *             → authorizeConnection
 *             → allow (relay connects to the app and relays) | deny (closed)
 *   outbound: relay accepts from the app → Accepted event → authorizeConnection (egress)
 *             → allow (relay connects, originates mTLS) → Peer event → checkPeer + the
 *             service's allowed SPIFFE IDs → allow (relay) | deny
 *
 * Live connections are registered with {@link LiveConnections} exactly like the Node layers'
 * ones, so revocation and policy changes close them; rotation installs the new SVID for later
 * handshakes (live connections keep theirs, as with Node's TLS).
 */
import { closeSync } from 'node:fs';
import { isIP, Socket } from 'node:net';
import type { Logger } from '../../../core/logging.js';
import type { PeerCertificateLike } from '../../../pki/svid-verify.js';
import { AgentError } from '../../errors.js';
import type { VerifiedConnection } from '../http/verified.js';
import { UNAUTHENTICATED, type ConnectionContext, type Decision } from '../authorizer.js';
import type { InboundPortConfig } from '../inbound-config.js';
import type { LiveConnection } from '../live-connections.js';
import type { OutboundDeps } from '../outbound.js';
import { idAllowed, type UpstreamService } from '../upstream-tls.js';
import { HostResolver } from './resolver.js';
import { RelayEventKind, RelayListenerKind, loadRelayAddon, type RelayAddon, type RelayCloseReason, type RelayEngine } from './addon.js';

const SLOT_SERVER = 0;
const SLOT_CLIENT = 1;

/**
 * The HTTP layer an L7 port hands its plaintext connections to (HttpInbound). The relay passes
 * the caller's close_notify/FIN on as shutdown(SHUT_WR) of its end of the socketpair and closes
 * the connection once both directions are shut, so the target decides when its side ends:
 * HttpInbound makes the socket half-open and ends it after the last answer.
 */
export interface HttpHandoffTarget {
  accept(socket: Socket, verified: VerifiedConnection, h2c?: boolean): void;
  close(): Promise<void>;
}

interface InboundSpec {
  readonly kind: 'inbound';
  readonly config: InboundPortConfig;
  port: number;
  /** L7 ports (ADR 0074): TLS ends on the relay, the plaintext goes to this HTTP layer. */
  readonly http?: HttpHandoffTarget;
}

interface OutboundSpec {
  readonly kind: 'outbound';
  readonly service: UpstreamService;
  port: number;
}

type Spec = InboundSpec | OutboundSpec;

interface Conn {
  readonly spec: Spec;
  ctx: ConnectionContext | undefined;
  decision: Decision | undefined;
  live: LiveConnection | undefined;
  started: number;
  /** Set when a decision already recorded this connection's outcome. */
  recorded: boolean;
  /** L7 ports: the verified peer, for the HTTP layer. */
  peer?: { readonly spiffeId: string; readonly fingerprint256: string; readonly serial: string };
  /** L7 ports: this side of the plaintext socketpair, once handed over. */
  socket?: Socket;
  /** Closed from JavaScript (policy, shutdown, JWT expiry): a Handoff still queued is refused. */
  closing?: boolean;
}

export type NativeL4Mode = 'auto' | 'native' | 'node';

/**
 * Whether an HTTP inbound port can terminate its TLS on the relay (ADR 0074): STRICT mTLS and an
 * IP-literal listen host. The HTTP layer stays in TypeScript and reaches the app itself.
 */
export function nativeHttpEligible(config: InboundPortConfig): boolean {
  return config.mode === 'STRICT' && config.protocol === 'http' && isIP(config.host) !== 0;
}

/**
 * Whether an inbound port can run on the native relay: STRICT mTLS, raw TCP, an IP-literal listen
 * host. An app host name is resolved on this side per connection (ADR 0078).
 */
export function nativeInboundEligible(config: InboundPortConfig): boolean {
  return config.mode === 'STRICT' && config.protocol === 'tcp' && isIP(config.host) !== 0;
}

/**
 * Whether an outbound upstream can run on the native relay: an IP-literal listen host. An
 * upstream host name is resolved on this side per connection (ADR 0078).
 */
export function nativeOutboundEligible(_service: UpstreamService, listenHost: string): boolean {
  return isIP(listenHost) !== 0;
}

/**
 * The relay's verified chain (leaf first; each certificate a 4-byte big-endian length then DER)
 * as the linked form `TrustState.checkPeer` takes. Throws on a malformed buffer (never expected:
 * the relay writes it), which the event handler turns into a denial.
 */
export function splitChain(bytes: Buffer): PeerCertificateLike {
  const ders: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    if (at + 4 > bytes.length) throw new Error('relay chain: truncated length');
    const n = bytes.readUInt32BE(at);
    if (n === 0 || at + 4 + n > bytes.length) throw new Error('relay chain: truncated certificate');
    ders.push(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  if (ders.length === 0) throw new Error('relay chain: empty');
  let link: PeerCertificateLike | undefined;
  for (let i = ders.length - 1; i >= 0; i--) link = { raw: ders[i] as Buffer, ...(link === undefined ? {} : { issuerCertificate: link }) };
  return link as PeerCertificateLike;
}

export class NativeL4 {
  readonly #addon: RelayAddon;
  readonly #engine: RelayEngine;
  readonly #deps: OutboundDeps;
  readonly #logger: Logger;
  readonly #specs = new Map<number, Spec>();
  readonly #conns = new Map<number, Conn>();
  readonly #unsubscribe: () => void;
  #nextListener = 1;
  #closed = false;
  /** Host names of upstreams and apps (ADR 0078); created on first use. */
  #hosts: HostResolver | undefined;

  /**
   * The native plane, or undefined when `mode` is `node`, or `auto` and the addon is missing.
   * `native` with no addon throws: the operator asked for it explicitly.
   */
  static open(mode: NativeL4Mode, deps: OutboundDeps, logger: Logger): NativeL4 | undefined {
    if (mode === 'node') return undefined;
    const load = loadRelayAddon();
    if (!load.ok) {
      if (mode === 'native') throw new AgentError('ERR_AGENT_CONFIG', `dataPlane: native requested but the relay is ${load.reason}`, { details: { path: 'dataPlane' } });
      logger.info({ reason: load.reason }, 'native L4 data plane unavailable; L4 runs on the Node data plane');
      return undefined;
    }
    return new NativeL4(load.addon, deps, logger);
  }

  private constructor(addon: RelayAddon, deps: OutboundDeps, logger: Logger) {
    this.#addon = addon;
    this.#deps = deps;
    this.#logger = logger;
    const { limits } = deps;
    this.#engine = addon.create((kind, conn, listener, der, bytesIn, bytesOut, reason, _relayed, peerIp, fd, alpn) => {
      if (kind === RelayEventKind.Handoff) this.#onHandoff(conn, fd, alpn);
      else this.#onEvent(kind, conn, listener, der, bytesIn, bytesOut, reason, peerIp);
    }, {
      handshakeTimeoutMs: limits.handshakeTimeoutMs,
      connectTimeoutMs: limits.connectTimeoutMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      decisionTimeoutMs: limits.handshakeTimeoutMs,
      maxConnections: limits.maxConnections,
    });
    this.#installMaterial();
    this.#unsubscribe = deps.trust.onChange((what) => {
      if (what === 'material') this.#installMaterial();
    });
  }

  #installMaterial(): void {
    const { certPem, keyPem, bundlePem } = this.#deps.trust.material;
    try {
      this.#addon.setTls(this.#engine, SLOT_SERVER, true, certPem, keyPem, bundlePem);
      this.#addon.setTls(this.#engine, SLOT_CLIENT, false, certPem, keyPem, bundlePem);
    } catch (error) {
      // TrustState accepted this material, so OpenSSL refusing it is unexpected: keep the last
      // good context (new handshakes keep working with the previous SVID until it expires).
      this.#logger.error({ code: 'ERR_AGENT_TLS_MATERIAL', reason: (error as Error).message }, 'native data plane refused the new TLS material; keeping the previous one');
    }
  }

  /** Opens a STRICT tcp inbound port on the relay; returns the bound port. */
  listenInbound(config: InboundPortConfig): number {
    const id = this.#nextListener++;
    const port = this.#addon.listen(this.#engine, id, RelayListenerKind.InboundTls, config.host, config.port, SLOT_SERVER, config.appHost, config.appPort);
    this.#specs.set(id, { kind: 'inbound', config, port });
    this.#addon.ref(this.#engine, true);
    return port;
  }

  /**
   * Opens a STRICT HTTP inbound port whose TLS ends on the relay (ALPN h2 / http/1.1); each
   * allowed connection's plaintext is handed to `http` over a socketpair. Returns the bound port.
   */
  listenInboundHttp(config: InboundPortConfig, http: HttpHandoffTarget): number {
    const id = this.#nextListener++;
    const port = this.#addon.listen(this.#engine, id, RelayListenerKind.InboundTlsHandoff, config.host, config.port, SLOT_SERVER, '127.0.0.1', 1);
    this.#specs.set(id, { kind: 'inbound', config, port, http });
    this.#addon.ref(this.#engine, true);
    return port;
  }

  /** Opens an outbound upstream listener on the relay; returns the bound port. */
  listenOutbound(service: UpstreamService, listenPort: number, listenHost: string): number {
    const id = this.#nextListener++;
    const port = this.#addon.listen(this.#engine, id, RelayListenerKind.OutboundPlain, listenHost, listenPort, SLOT_CLIENT, service.host, service.port);
    this.#specs.set(id, { kind: 'outbound', service, port });
    this.#addon.ref(this.#engine, true);
    return port;
  }

  /** Live connections on the relay (decided or waiting). */
  get connections(): number {
    return this.#conns.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const id of this.#specs.keys()) this.#addon.unlisten(this.#engine, id);
    // Connections closing now still report their bytes; give the relay a moment to say so.
    for (const id of this.#conns.keys()) this.#addon.close(this.#engine, id);
    const deadline = Date.now() + 1000;
    while (this.#conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const spec of this.#specs.values()) if (spec.kind === 'inbound' && spec.http !== undefined) await spec.http.close();
    this.#addon.ref(this.#engine, false);
    this.#addon.destroy(this.#engine);
    // The relay sends no events once destroyed: whatever did not report its close in time was
    // closed by destroy; release it here so the live registry and the gauges do not keep it.
    for (const id of [...this.#conns.keys()]) this.#onClosed(id, 0, 0, 'closed');
  }

  #onEvent(kind: RelayEventKind, id: number, listener: number, der: Buffer | undefined, bytesIn: number, bytesOut: number, reason: RelayCloseReason | undefined, peerIp?: string): void {
    try {
      if (kind === RelayEventKind.Closed) {
        this.#onClosed(id, bytesIn, bytesOut, reason);
        return;
      }
      const spec = this.#specs.get(listener);
      if (spec === undefined || this.#closed) {
        this.#addon.deny(this.#engine, id);
        return;
      }
      if (kind === RelayEventKind.Accepted && spec.kind === 'outbound') this.#onOutboundAccepted(id, spec);
      else if (kind === RelayEventKind.Peer && der !== undefined) this.#onPeer(id, spec, der, peerIp);
      else this.#addon.deny(this.#engine, id);
    } catch (error) {
      // A decision that throws denies (fail closed) instead of crashing the agent.
      this.#logger.error({ code: 'ERR_AGENT_CONNECTION_DENIED', err: (error as Error).message }, 'native data plane decision failed; connection denied');
      this.#addon.deny(this.#engine, id);
    }
  }

  #onOutboundAccepted(id: number, spec: OutboundSpec): void {
    const { trust, authorizers, metrics } = this.#deps;
    const ctx: ConnectionContext = {
      direction: 'outbound',
      source: { spiffeId: trust.spiffeId, authenticated: true, attributes: {} },
      destination: spec.service.name,
      port: spec.port,
    };
    const decision = authorizers.current.authorizeConnection(ctx);
    const conn: Conn = { spec, ctx, decision, live: undefined, started: 0, recorded: false };
    this.#conns.set(id, conn);
    if (!decision.allow) {
      metrics.connections.labels('outbound', 'denied').inc();
      this.#record(conn, 'denied', 'ERR_AGENT_CONNECTION_DENIED', 0, 0, 0);
      this.#addon.deny(this.#engine, id);
      return;
    }
    this.#allowTo(id, conn, RelayEventKind.Accepted, spec.service.host);
  }

  /**
   * Allows `conn` at `stage` towards `host`: an IP literal goes as the listener's target; a name
   * is resolved here and its address handed to the relay with the allow (the relay thread never
   * blocks on DNS). A name that does not resolve denies the connection (fail closed); one
   * resolved after the connection went away (decision timeout, shutdown) is dropped.
   */
  #allowTo(id: number, conn: Conn, stage: typeof RelayEventKind.Accepted | typeof RelayEventKind.Peer, host: string): void {
    if (isIP(host) !== 0) {
      this.#addon.allow(this.#engine, id, stage);
      return;
    }
    this.#hosts ??= new HostResolver({ clock: this.#deps.clock });
    const address = this.#hosts.resolve(host);
    if (typeof address === 'string') {
      this.#addon.allow(this.#engine, id, stage, address);
      return;
    }
    address.then((ip) => {
      if (!this.#closed && this.#conns.get(id) === conn && conn.closing !== true) this.#addon.allow(this.#engine, id, stage, ip);
    }, (error: Error) => {
      if (this.#closed || this.#conns.get(id) !== conn) return;
      this.#logger.debug({ code: 'ERR_AGENT_UPSTREAM', host, err: error.message }, 'host name did not resolve; connection closed');
      this.#addon.deny(this.#engine, id);
    });
  }

  #onPeer(id: number, spec: Spec, chainBytes: Buffer, peerIp?: string): void {
    const { trust, authorizers, metrics, live, clock } = this.#deps;
    const direction = spec.kind;
    const chain = splitChain(chainBytes);
    // DER only: no X509Certificate per connection (see PeerVerifier.verify).
    const check = trust.checkPeer(chain, chain);
    let conn = this.#conns.get(id);
    if (conn === undefined) {
      conn = { spec, ctx: undefined, decision: undefined, live: undefined, started: 0, recorded: false };
      this.#conns.set(id, conn);
    }
    if (spec.kind === 'outbound' && conn.decision?.allow !== true) {
      // An upstream handshake this side never allowed egress for: fail closed.
      this.#record(conn, 'denied', 'ERR_AGENT_CONNECTION_DENIED', 0, 0, 0);
      this.#addon.deny(this.#engine, id);
      return;
    }
    if (!check.ok) {
      this.#reject(id, conn, check.reason, UNAUTHENTICATED);
      return;
    }
    if (spec.kind === 'outbound' && !idAllowed(check.spiffeId, spec.service.allowedIds)) {
      this.#reject(id, conn, 'ERR_AGENT_PEER_UNEXPECTED');
      return;
    }
    if (spec.kind === 'inbound') {
      const ctx: ConnectionContext = { direction: 'inbound', source: { spiffeId: check.spiffeId, authenticated: true, attributes: {}, ...(peerIp === undefined ? {} : { address: peerIp }) }, destination: trust.spiffeId, port: spec.port };
      conn.ctx = ctx;
      conn.decision = authorizers.current.authorizeConnection(ctx);
      if (!conn.decision.allow) {
        metrics.connections.labels('inbound', 'denied').inc();
        this.#record(conn, 'denied', 'ERR_AGENT_CONNECTION_DENIED', 0, 0, 0);
        this.#addon.deny(this.#engine, id);
        return;
      }
    }
    metrics.connections.labels(direction, 'allowed').inc();
    metrics.activeConnections.labels(direction).inc();
    const ctx = conn.ctx as ConnectionContext;
    // The verifier's shared copy of the chain, so this handshake's buffer can die young.
    const kept = check.chain ?? chain;
    const l7 = spec.kind === 'inbound' && spec.http !== undefined;
    if (l7) conn.peer = { spiffeId: check.spiffeId, fingerprint256: check.fingerprint256, serial: check.serial };
    const owner = conn;
    const liveConn: LiveConnection = {
      ctx, cert: kept, chain: kept, serial: check.serial, l7, epoch: 0,
      close: () => {
        owner.closing = true;
        owner.socket?.destroy();
        this.#addon.close(this.#engine, id);
      },
    };
    conn.live = liveConn;
    conn.started = clock.now();
    live.add(liveConn);
    // Inbound TCP: the relay connects to the app now, so an app host name is resolved here.
    if (spec.kind === 'inbound' && spec.http === undefined) this.#allowTo(id, conn, RelayEventKind.Peer, spec.config.appHost);
    else this.#addon.allow(this.#engine, id, RelayEventKind.Peer);
  }

  /**
   * An allowed L7 connection's plaintext end: wrapped as a socket and given to the HTTP layer.
   * A descriptor nobody is waiting for is closed (the relay then closes the connection).
   */
  #onHandoff(id: number, fd: number | undefined, alpn: string): void {
    if (fd === undefined) return;
    const conn = this.#conns.get(id);
    const spec = conn?.spec;
    if (conn === undefined || conn.live === undefined || conn.peer === undefined || conn.closing === true || spec?.kind !== 'inbound' || spec.http === undefined || this.#closed) {
      closeSync(fd);
      this.#addon.close(this.#engine, id);
      return;
    }
    let socket: Socket | undefined;
    try {
      socket = new Socket({ fd, readable: true, writable: true });
      // What a TLSSocket would say: the HTTP layer routes h2 by it.
      Object.defineProperty(socket, 'alpnProtocol', { value: alpn === '' ? false : alpn });
      conn.socket = socket;
      spec.http.accept(socket, { ctx: conn.ctx as ConnectionContext, live: conn.live, spiffeId: conn.peer.spiffeId, fingerprint256: conn.peer.fingerprint256, serial: conn.peer.serial });
    } catch (error) {
      // Fail closed: the connection ends, the agent does not.
      if (socket === undefined) closeSync(fd);
      else socket.destroy();
      this.#addon.close(this.#engine, id);
      this.#logger.error({ code: 'ERR_AGENT_INTERNAL', err: (error as Error).message }, 'native data plane could not hand a connection to the HTTP layer');
    }
  }

  /** A peer refused after the handshake: counted, recorded with its reason, closed. */
  #reject(id: number, conn: Conn, reason: string, source?: string): void {
    const direction = conn.spec.kind;
    this.#deps.metrics.handshakeFailures.labels(direction, reason).inc();
    this.#deps.metrics.connections.labels(direction, 'rejected').inc();
    this.#record(conn, 'rejected', reason, 0, 0, 0, source);
    this.#addon.deny(this.#engine, id);
  }

  #onClosed(id: number, bytesIn: number, bytesOut: number, reason: RelayCloseReason | undefined): void {
    const conn = this.#conns.get(id);
    this.#conns.delete(id);
    const { metrics, live, clock } = this.#deps;
    if (conn === undefined) {
      // Closed before any decision: a failed inbound handshake (the Node layer counts these the same way).
      const code = reason === 'verify' ? 'ERR_AGENT_PEER_UNVERIFIED' : 'tls_error';
      metrics.handshakeFailures.labels('inbound', code).inc();
      metrics.connections.labels('inbound', 'rejected').inc();
      return;
    }
    const direction = conn.spec.kind;
    conn.socket?.destroy();
    if (conn.live !== undefined) {
      live.delete(conn.live);
      metrics.activeConnections.labels(direction).dec();
      metrics.bytes.labels(direction, direction === 'inbound' ? 'rx' : 'tx').inc(bytesIn);
      metrics.bytes.labels(direction, direction === 'inbound' ? 'tx' : 'rx').inc(bytesOut);
      this.#record(conn, 'allowed', undefined, bytesIn, bytesOut, clock.now() - conn.started);
      return;
    }
    if (conn.recorded) return;
    // Allowed egress whose upstream could not be reached or failed the handshake.
    const code = reason === 'verify' ? 'ERR_AGENT_PEER_UNVERIFIED' : 'ERR_AGENT_UPSTREAM';
    metrics.handshakeFailures.labels(direction, code).inc();
    metrics.connections.labels(direction, 'rejected').inc();
    this.#record(conn, 'rejected', code, 0, 0, 0);
  }

  #record(conn: Conn, verdict: 'allowed' | 'denied' | 'rejected', reason: string | undefined, bytesIn: number, bytesOut: number, durationMs: number, source?: string): void {
    conn.recorded = true;
    const { trust, clock, events } = this.#deps;
    const spec = conn.spec;
    const inbound = spec.kind === 'inbound';
    events.record({
      class: 'network_activity',
      time: clock.now(),
      direction: spec.kind,
      source: inbound ? (source ?? conn.ctx?.source.spiffeId ?? UNAUTHENTICATED) : trust.spiffeId,
      destination: inbound ? trust.spiffeId : spec.service.name,
      port: spec.port,
      verdict,
      policy: conn.decision?.reference ?? 'none',
      ...(reason === undefined ? {} : { reason }),
      bytesIn,
      bytesOut,
      durationMs,
    });
  }
}

