/**
 * A STRICT HTTP inbound port opened the way the agent opens it (openListeners: on the native
 * plane, NativeL4.listenInboundHttp → HttpInbound, ADR 0074), with a Ward policy decided by
 * PolicyAuthorizer. For the native L7 tests.
 */
import { AuthorizerHolder } from '../../../../src/agent/proxy/authorizer.js';
import { TrustState, type TlsMaterial } from '../../../../src/agent/proxy/trust.js';
import { LiveConnections } from '../../../../src/agent/proxy/live-connections.js';
import { AgentMetrics } from '../../../../src/agent/metrics.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../../../../src/agent/proxy/limits.js';
import { systemClock } from '../../../../src/core/clock.js';
import { createLogger } from '../../../../src/core/logging.js';
import type { AgentEvent } from '../../../../src/agent/events.js';
import { policyAuthorizer } from './policy.js';

export interface L7Port {
  readonly port: number;
  readonly trust: TrustState;
  readonly live: LiveConnections;
  readonly events: AgentEvent[];
  readonly planes: readonly string[];
  close(): Promise<void>;
}

export async function openHttpPort(options: { material: TlsMaterial; policy: string; appPort: number; limits?: ProxyLimits; dataPlane?: 'native' | 'node' }): Promise<L7Port> {
  const { openListeners } = await import('../../../../src/agent/listeners.js');
  const trust = new TrustState(options.material);
  const authorizers = new AuthorizerHolder(policyAuthorizer(options.policy));
  const metrics = new AgentMetrics();
  const live = new LiveConnections(authorizers, trust, () => metrics.closedByPolicy.inc());
  const events: AgentEvent[] = [];
  const deps = { trust, authorizers, live, metrics, clock: systemClock, events: { record: (e: AgentEvent) => void events.push(e) }, limits: options.limits ?? DEFAULT_LIMITS, jwt: undefined };
  const inbound = [{ port: 0, host: '127.0.0.1', mode: 'STRICT' as const, protocol: 'http' as const, appHost: '127.0.0.1', appPort: options.appPort, appProtocol: 'http1' as const }];
  const opened = await openListeners({ inbound, outbound: [], dataPlane: options.dataPlane ?? 'native', workers: 1 }, deps, createLogger({ name: 'test', level: 'silent' }));
  const port = opened.inbound[0] as number;
  // The agent names its HTTP ports to the authorizer; here the port is known only now.
  authorizers.set(policyAuthorizer(options.policy, 'v1', { httpPorts: [port] }));
  return {
    port, trust, live, events, planes: opened.planes.inbound,
    async close() {
      live.closeAll('shutdown');
      live.dispose();
      for (const close of opened.closers.reverse()) await close();
    },
  };
}
