/**
 * The agent in control-plane mode: the same proxy layers as static mode (src/agent/agent.ts),
 * with identity and policy from the server instead of files. Builds, in order: the control
 * plane (attest, sync, workload SVID), TLS state, the policy authorizer, metrics, the event
 * spool shipping to the server, inbound listeners, outbound upstreams, HTTP proxy, admin.
 *
 * Readiness (`/readyz`) is false while the SVID is outside its validity window, the agent
 * failed closed, its node SVID is gone with a spent join token, or the server has not been heard
 * from for longer than the watch idle timeout ({@link ControlPlane.notReady}).
 */
import { readFile } from 'node:fs/promises';
import { Counter, Gauge, type Registry } from '../prom.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logging.js';
import { AdminServer, notReady, registryMetrics } from '../admin.js';
import type { AgentConfig } from '../config.js';
import { AgentMetrics } from '../metrics.js';
import { outboundTargets } from '../policy-authorizer.js';
import { openListeners } from '../listeners.js';
import { AuthorizerHolder } from '../proxy/authorizer.js';
import type { JwtVerifier } from '../proxy/http/jwt.js';
import { LiveConnections } from '../proxy/live-connections.js';
import { TrustState } from '../proxy/trust.js';
import { EventSpool } from '../spool/spool.js';
import { ControlPlane, type ControlPlaneOptions } from './controller.js';

/** The proxy part of the agent configuration (identity files and policy directory are not used). */
export type ProxyConfig = Pick<AgentConfig, 'inbound' | 'outbound' | 'httpProxy' | 'jwt' | 'admin' | 'limits'> & Partial<Pick<AgentConfig, 'dataPlane'>> & {
  /** Spool directory (events survive restarts and outages here); maxBytes bounds it. */
  readonly spool: { readonly dir: string; readonly maxBytes: number };
};

export type ControlOptions = Omit<ControlPlaneOptions, 'clock' | 'logger' | 'authorizerOptions'>;

export interface ControlledAgent {
  readonly control: ControlPlane;
  readonly trust: TrustState;
  readonly authorizers: AuthorizerHolder;
  readonly metrics: AgentMetrics;
  readonly spool: EventSpool;
  readonly ports: { readonly inbound: readonly number[]; readonly outbound: readonly number[]; readonly httpProxy: number | undefined; readonly admin: number | undefined };
  stop(): Promise<void>;
}

/**
 * The control plane's state as metrics, read at scrape time: watch connected, node identity lost
 * with a spent join token, failed closed, re-attestations, idle watch streams dropped, reconnects.
 */
export function registerControlMetrics(registry: Registry, cp: ControlPlane): void {
  const flag = (name: string, help: string, read: () => boolean): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read() ? 1 : 0); } });
  };
  const count = (name: string, help: string, read: () => number): void => {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  };
  flag('ward_agent_control_connected', '1 while the watch stream to the server is open.', () => cp.status().connected);
  flag('ward_agent_control_join_token_spent', '1 when the agent SVID is gone and the single-use join token cannot attest again: restart with a new token.', () => cp.status().agentIdentity === 'join_token_spent');
  flag('ward_agent_control_failed_closed', '1 while every connection is denied for want of a valid workload SVID.', () => cp.status().failedClosed);
  count('ward_agent_control_reattestations_total', 'Attestations again after the agent SVID expired or was refused.', () => cp.status().reattestations);
  count('ward_agent_control_watch_idle_timeouts_total', 'Watch streams dropped because nothing (no event, no heartbeat) arrived within the idle timeout.', () => cp.status().watchIdleTimeouts);
  count('ward_agent_control_watch_reconnects_total', 'Watch streams reopened after a disconnect.', () => cp.status().reconnects);
}

export async function startControlledAgent(proxy: ProxyConfig, control: ControlOptions, deps: { clock: Clock; logger: Logger }): Promise<ControlledAgent> {
  const { clock, logger } = deps;
  const authorizerOptions = { httpPorts: proxy.inbound.filter((p) => p.protocol === 'http').map((p) => p.port), outbound: outboundTargets(proxy) };
  const cp = await ControlPlane.connect({ ...control, clock, logger, authorizerOptions });
  const closers: (() => Promise<void>)[] = [];
  let spool: EventSpool | undefined;
  try {
    const trust = new TrustState(cp.material);
    const authorizers = new AuthorizerHolder();
    cp.attach(trust, authorizers);
    const metrics = new AgentMetrics();
    registerControlMetrics(metrics.registry, cp);
    const live = new LiveConnections(authorizers, trust, () => metrics.closedByPolicy.inc());
    closers.push(async () => {
      live.closeAll('shutdown');
      live.dispose();
    });
    // Retries capped at 5 s: after an outage the backlog reaches the server within seconds.
    spool = await EventSpool.open({ dir: proxy.spool.dir, agentId: cp.session.agentId, sink: cp.eventSink(), maxBytes: proxy.spool.maxBytes, metrics, retryMaxMs: 5000 });
    spool.start();
    let jwt: JwtVerifier | undefined;
    if (proxy.jwt !== undefined) {
      const jwks = proxy.jwt.jwksFile !== undefined ? JSON.parse(await readFile(proxy.jwt.jwksFile, 'utf8')) : new URL(proxy.jwt.jwksUri as string);
      const { createJwtVerifier } = await import('../proxy/http/jwt.js'); // jose only when JWTs are configured (ADR 0044)
      jwt = createJwtVerifier({ issuer: proxy.jwt.issuer, audiences: proxy.jwt.audiences, jwks }, clock);
    }
    const common = { trust, authorizers, live, metrics, events: spool, clock, limits: proxy.limits };
    const ports: { inbound: number[]; outbound: number[]; httpProxy: number | undefined; admin: number | undefined } = { inbound: [], outbound: [], httpProxy: undefined, admin: undefined };
    const opened = await openListeners({ ...proxy, dataPlane: proxy.dataPlane ?? 'auto', workers: 1 }, { ...common, jwt }, logger);
    ports.inbound.push(...opened.inbound);
    ports.outbound.push(...opened.outbound);
    closers.push(...opened.closers);
    if (proxy.httpProxy !== undefined) {
      const { HttpProxyListener } = await import('../proxy/http-proxy.js');
      const p = new HttpProxyListener(proxy.outbound, proxy.httpProxy.port, common, proxy.httpProxy.host);
      ports.httpProxy = await p.listen();
      closers.push(() => p.close());
    }
    if (proxy.admin !== undefined) {
      const admin = new AdminServer({ ...proxy.admin, metrics: registryMetrics(metrics.registry), notReady: () => cp.notReady() ?? notReady(trust, clock) });
      ports.admin = await admin.listen();
      closers.push(() => admin.close());
    }
    const running = spool;
    logger.info({ spiffeId: trust.spiffeId, agentId: cp.session.agentId, ...ports }, 'agent started (control plane)');
    return {
      control: cp, trust, authorizers, metrics, spool: running, ports,
      async stop() {
        for (const close of closers.reverse()) await close();
        await running.close();
        await cp.stop();
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await spool?.close();
    await cp.stop();
    throw error;
  }
}
