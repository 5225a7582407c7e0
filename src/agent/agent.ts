/**
 * The agent's one wiring function: builds the parts in order (TLS material and policy,
 * metrics, event spool, inbound listeners, outbound upstreams, HTTP proxy, admin endpoint,
 * file reloader) and returns the running agent. Tests call it directly; `ward agent` calls
 * it from the CLI. Static mode uses {@link StaticSource}: identity files and a policy directory
 * of Ward policies decided by `PolicyAuthorizer` (ADR 0045); the control-plane mode
 * (src/agent/control/agent.ts) gets identity and policies from the server instead, with the same
 * authorizer and the same layers.
 */
import { readFile } from 'node:fs/promises';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logging.js';
import type { AgentConfig } from './config.js';
import { AdminServer, notReady, registryMetrics } from './admin.js';
import { discardEvents, type EventRecorder } from './events.js';
import { openListeners, type OpenedListeners } from './listeners.js';
import { AgentMetrics } from './metrics.js';
import { AuthorizerHolder } from './proxy/authorizer.js';
import type { JwtVerifier } from './proxy/http/jwt.js';
import { LiveConnections } from './proxy/live-connections.js';
import { TrustState } from './proxy/trust.js';
import { EventSpool } from './spool/spool.js';
import { HttpEventSink } from './spool/sink.js';
import { StaticSource, readTlsMaterial } from './static-source.js';

export interface RunningAgent {
  readonly trust: TrustState;
  readonly authorizers: AuthorizerHolder;
  readonly metrics: AgentMetrics;
  readonly spool: EventSpool | undefined;
  /** Bound ports, in config order (useful when the config asked for port 0). */
  readonly ports: { readonly inbound: readonly number[]; readonly outbound: readonly number[]; readonly httpProxy: number | undefined; readonly admin: number | undefined };
  stop(): Promise<void>;
}

export interface AgentDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Admin endpoint off (cluster workers: the primary serves it). */
  readonly noAdmin?: boolean;
  /** Suffix for the spool directory and agent ID (cluster workers). */
  readonly workerId?: number;
}

export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  const { clock, logger } = deps;
  const trust = new TrustState(await readTlsMaterial(config));
  const authorizers = new AuthorizerHolder();
  const metrics = new AgentMetrics();
  const source = new StaticSource(config, trust, authorizers, metrics, logger, clock);
  await source.load();
  const live = new LiveConnections(authorizers, trust, () => metrics.closedByPolicy.inc());

  let spool: EventSpool | undefined;
  let events: EventRecorder = discardEvents;
  if (config.spool !== undefined) {
    const suffix = deps.workerId === undefined ? '' : `-w${deps.workerId}`;
    const sink = config.spool.sinkUrl === undefined ? { send: () => Promise.reject(new Error('no sink configured')) } : new HttpEventSink(new URL(config.spool.sinkUrl));
    spool = await EventSpool.open({ dir: `${config.spool.dir}${suffix}`, agentId: `${config.spool.agentId}${suffix}`, sink, maxBytes: config.spool.maxBytes, metrics });
    if (spool.stats.corruptTails > 0) logger.warn({ code: 'ERR_AGENT_SPOOL_CORRUPT', files: spool.stats.corruptTails }, 'spool had torn or corrupt tails; kept every record before them');
    if (config.spool.sinkUrl !== undefined) spool.start();
    events = spool;
  }

  let jwt: JwtVerifier | undefined;
  if (config.jwt !== undefined) {
    const jwks = config.jwt.jwksFile !== undefined ? JSON.parse(await readFile(config.jwt.jwksFile, 'utf8')) : new URL(config.jwt.jwksUri as string);
    // jose (≈ 7 MB of RSS) is loaded only when end-user JWTs are configured (ADR 0044).
    const { createJwtVerifier } = await import('./proxy/http/jwt.js');
    jwt = createJwtVerifier({ issuer: config.jwt.issuer, audiences: config.jwt.audiences, jwks }, clock);
  }

  const common = { trust, authorizers, live, metrics, events, clock, limits: config.limits };
  const closers: (() => Promise<void>)[] = [];
  const started: { inbound: number[]; outbound: number[]; httpProxy: number | undefined; admin: number | undefined } = { inbound: [], outbound: [], httpProxy: undefined, admin: undefined };
  let planes: OpenedListeners['planes'] | undefined;
  try {
    const opened = await openListeners(config, { ...common, jwt }, logger);
    planes = opened.planes;
    started.inbound.push(...opened.inbound);
    started.outbound.push(...opened.outbound);
    closers.push(...opened.closers);
    if (config.httpProxy !== undefined) {
      const { HttpProxyListener } = await import('./proxy/http-proxy.js');
      const proxy = new HttpProxyListener(config.outbound, config.httpProxy.port, common, config.httpProxy.host);
      started.httpProxy = await proxy.listen();
      closers.push(() => proxy.close());
    }
    if (config.admin !== undefined && deps.noAdmin !== true) {
      const admin = new AdminServer({ ...config.admin, metrics: registryMetrics(metrics.registry), notReady: () => notReady(trust, clock) });
      started.admin = await admin.listen();
      closers.push(() => admin.close());
    }
  } catch (error) {
    for (const close of closers.reverse()) await close();
    await spool?.close();
    throw error;
  }
  source.start();
  logger.info({ spiffeId: trust.spiffeId, ...started, dataPlane: planes }, 'agent started');

  return {
    trust,
    authorizers,
    metrics,
    spool,
    ports: started,
    async stop() {
      await source.stop();
      live.closeAll('shutdown');
      live.dispose();
      for (const close of closers.reverse()) await close();
      await spool?.close();
    },
  };
}

export { notReady } from './admin.js';
