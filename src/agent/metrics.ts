/**
 * Every metric the agent exports, defined once here (Prometheus naming: `ward_agent_` prefix,
 * base units, `_total` for counters). Layers receive an {@link AgentMetrics} and touch only
 * pre-resolved label children on the hot path.
 */
import { Counter, Gauge, Histogram, Registry } from './prom.js';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly connections = new Counter({
    name: 'ward_agent_connections_total',
    help: 'Connections handled, by direction and verdict (allowed, denied, rejected before authorization).',
    labelNames: ['direction', 'verdict'] as const,
    registers: [this.registry],
  });
  readonly activeConnections = new Gauge({
    name: 'ward_agent_active_connections',
    help: 'Connections currently open, by direction.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly handshakeFailures = new Counter({
    name: 'ward_agent_tls_handshake_failures_total',
    help: 'Inbound or outbound TLS handshakes that failed or presented an unacceptable peer, by reason code.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: 'ward_agent_http_requests_total',
    help: 'HTTP requests seen on L7 ports, by verdict.',
    labelNames: ['verdict'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'ward_agent_http_request_duration_seconds',
    help: 'Time from request headers to response end for allowed requests.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly bytes = new Counter({
    name: 'ward_agent_bytes_total',
    help: 'Bytes proxied, by direction of the connection and of the bytes (rx from peer, tx to peer).',
    labelNames: ['direction', 'flow'] as const,
    registers: [this.registry],
  });
  readonly closedByPolicy = new Counter({
    name: 'ward_agent_connections_closed_by_policy_total',
    help: 'Live connections closed because a policy change or revocation no longer allows them.',
    registers: [this.registry],
  });
  readonly spoolPending = new Gauge({
    name: 'ward_agent_spool_pending_events',
    help: 'Events written to the spool and not yet acknowledged by the sink.',
    registers: [this.registry],
  });
  readonly spoolDropped = new Counter({
    name: 'ward_agent_spool_dropped_events_total',
    help: 'Events dropped because the spool reached its size bound.',
    registers: [this.registry],
  });
  readonly spoolSent = new Counter({
    name: 'ward_agent_spool_sent_events_total',
    help: 'Events acknowledged by the sink.',
    registers: [this.registry],
  });
  readonly policyReloads = new Counter({
    name: 'ward_agent_policy_reloads_total',
    help: 'Policy or TLS material reloads, by what changed and result.',
    labelNames: ['what', 'result'] as const,
    registers: [this.registry],
  });
}
