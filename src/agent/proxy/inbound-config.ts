/** Configuration and dependencies of an inbound port (shared by the L4 and L7 layers). */
import type { Clock } from '../../core/clock.js';
import type { EventRecorder } from '../events.js';
import type { AgentMetrics } from '../metrics.js';
import type { AuthorizerHolder } from './authorizer.js';
import type { JwtVerifier } from './http/jwt.js';
import type { ProxyLimits } from './limits.js';
import type { LiveConnections } from './live-connections.js';
import type { TrustState } from './trust.js';

export interface InboundPortConfig {
  readonly port: number;
  readonly host: string;
  readonly mode: 'STRICT' | 'PERMISSIVE';
  readonly protocol: 'tcp' | 'http';
  readonly appHost: string;
  readonly appPort: number;
  /** How the app speaks HTTP: HTTP/1.1, or cleartext HTTP/2 (needed for gRPC). */
  readonly appProtocol: 'http1' | 'h2c';
}

export interface InboundDeps {
  readonly trust: TrustState;
  readonly authorizers: AuthorizerHolder;
  readonly live: LiveConnections;
  readonly metrics: AgentMetrics;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly limits: ProxyLimits;
  readonly jwt: JwtVerifier | undefined;
}
