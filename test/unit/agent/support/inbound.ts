/** Builds an inbound listener over real sockets with the deps a test wants to observe. */
import { systemClock } from '../../../../src/core/clock.js';
import { PolicyAuthorizer } from '../../../../src/agent/policy-authorizer.js';
import { AuthorizerHolder, type Authorizer } from '../../../../src/agent/proxy/authorizer.js';
import { InboundListener, type InboundPortConfig } from '../../../../src/agent/proxy/inbound.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../../../../src/agent/proxy/limits.js';
import { LiveConnections } from '../../../../src/agent/proxy/live-connections.js';
import { TrustState, type TlsMaterial } from '../../../../src/agent/proxy/trust.js';
import { AgentMetrics } from '../../../../src/agent/metrics.js';
import type { AgentEvent } from '../../../../src/agent/events.js';
import type { JwtVerifier } from '../../../../src/agent/proxy/http/jwt.js';

export interface InboundHarness {
  readonly port: number;
  readonly trust: TrustState;
  readonly authorizers: AuthorizerHolder;
  readonly live: LiveConnections;
  readonly metrics: AgentMetrics;
  readonly events: AgentEvent[];
  close(): Promise<void>;
}

export async function startInbound(options: {
  material: TlsMaterial;
  authorizer: Authorizer;
  appPort: number;
  mode?: 'STRICT' | 'PERMISSIVE';
  protocol?: 'tcp' | 'http';
  appProtocol?: 'http1' | 'h2c';
  limits?: Partial<ProxyLimits>;
  jwt?: JwtVerifier;
}): Promise<InboundHarness> {
  const trust = new TrustState(options.material);
  const authorizers = new AuthorizerHolder(options.authorizer);
  const metrics = new AgentMetrics();
  const live = new LiveConnections(authorizers, trust, () => metrics.closedByPolicy.inc());
  const events: AgentEvent[] = [];
  const config: InboundPortConfig = {
    port: 0,
    host: '127.0.0.1',
    mode: options.mode ?? 'STRICT',
    protocol: options.protocol ?? 'tcp',
    appHost: '127.0.0.1',
    appPort: options.appPort,
    appProtocol: options.appProtocol ?? 'http1',
  };
  const listener = new InboundListener(config, {
    trust, authorizers, live, metrics, clock: systemClock,
    events: { record: (e) => void events.push(e) },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    jwt: options.jwt,
  });
  const port = await listener.listen();
  // The agent names its HTTP inbound ports to the PolicyAuthorizer; here the port is known only now.
  if (config.protocol === 'http' && options.authorizer instanceof PolicyAuthorizer) authorizers.set(options.authorizer.withOptions({ httpPorts: [port] }));
  return {
    port, trust, authorizers, live, metrics, events,
    async close() {
      live.closeAll('shutdown');
      live.dispose();
      await listener.close();
    },
  };
}
