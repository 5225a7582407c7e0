/**
 * The outbound stack for one upstream, top to bottom:
 *   accept (loopback plaintext from the app) → authorize (egress) → mTLS origination with
 *   server SPIFFE ID check → forward.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../../core/clock.js';
import { isWardError } from '../../core/errors.js';
import type { EventRecorder } from '../events.js';
import type { AgentMetrics } from '../metrics.js';
import type { AuthorizerHolder, ConnectionContext, Decision } from './authorizer.js';
import { splice } from './forward.js';
import type { ProxyLimits } from './limits.js';
import type { LiveConnection, LiveConnections } from './live-connections.js';
import type { TrustState } from './trust.js';
import { connectUpstream, type UpstreamService } from './upstream-tls.js';

export interface OutboundDeps {
  readonly trust: TrustState;
  readonly authorizers: AuthorizerHolder;
  readonly live: LiveConnections;
  readonly metrics: AgentMetrics;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly limits: ProxyLimits;
}

/** Authorizes and opens one outbound tunnel from `down` (already accepted) to `service`. */
export async function openOutbound(down: Socket, service: UpstreamService, localPort: number, deps: OutboundDeps, onOpen?: () => void): Promise<boolean> {
  const { trust, authorizers, live, metrics, clock } = deps;
  const ctx: ConnectionContext = {
    direction: 'outbound',
    source: { spiffeId: trust.spiffeId, authenticated: true, attributes: {} },
    destination: service.name,
    port: localPort,
  };
  const record = (verdict: 'allowed' | 'denied' | 'rejected', decision: Decision | undefined, reason: string | undefined, bytesIn: number, bytesOut: number, durationMs: number): void =>
    deps.events.record({ class: 'network_activity', time: clock.now(), direction: 'outbound', source: trust.spiffeId, destination: service.name, port: localPort, verdict, policy: decision?.reference ?? 'none', ...(reason === undefined ? {} : { reason }), bytesIn, bytesOut, durationMs });
  const decision = authorizers.current.authorizeConnection(ctx);
  if (!decision.allow) {
    metrics.connections.labels('outbound', 'denied').inc();
    record('denied', decision, 'ERR_AGENT_CONNECTION_DENIED', 0, 0, 0);
    down.destroy();
    return false;
  }
  down.pause();
  let up;
  try {
    up = await connectUpstream(service, trust, deps.limits.connectTimeoutMs);
  } catch (error) {
    const code = isWardError(error) ? error.code : 'ERR_AGENT_UPSTREAM';
    metrics.handshakeFailures.labels('outbound', code).inc();
    metrics.connections.labels('outbound', 'rejected').inc();
    record('rejected', decision, code, 0, 0, 0);
    down.destroy();
    return false;
  }
  if (down.destroyed) {
    up.socket.destroy();
    return false;
  }
  metrics.connections.labels('outbound', 'allowed').inc();
  const active = metrics.activeConnections.labels('outbound');
  active.inc();
  const conn: LiveConnection = { ctx, cert: up.cert, chain: up.chain, serial: up.serial, l7: false, epoch: 0, close: () => down.destroy() };
  live.add(conn);
  const started = clock.now();
  onOpen?.();
  splice(down, up.socket, deps.limits.idleTimeoutMs, (r) => {
    live.delete(conn);
    active.dec();
    metrics.bytes.labels('outbound', 'rx').inc(r.bytesOut);
    metrics.bytes.labels('outbound', 'tx').inc(r.bytesIn);
    record('allowed', decision, undefined, r.bytesIn, r.bytesOut, clock.now() - started);
  });
  return true;
}

export class OutboundListener {
  readonly #server: Server;

  constructor(
    readonly service: UpstreamService,
    readonly listenPort: number,
    private readonly deps: OutboundDeps,
    readonly listenHost = '127.0.0.1',
  ) {
    this.#server = createServer({ pauseOnConnect: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      void openOutbound(socket, service, this.port, deps);
    });
    this.#server.maxConnections = deps.limits.maxConnections;
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
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
