/**
 * The flow and request events the proxy layers record. Shapes follow OCSF Network Activity
 * (class 4001) and HTTP Activity (class 4002) with the fields the agent knows; when
 * `src/events` lands, the spool's sink maps these to its OCSF types at the edge.
 */
export interface FlowEvent {
  readonly class: 'network_activity';
  readonly time: number;
  readonly direction: 'inbound' | 'outbound';
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  readonly verdict: 'allowed' | 'denied' | 'rejected';
  readonly policy: string;
  /** Set when rejected before authorization or closed by policy: an agent error code. */
  readonly reason?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
}

export interface RequestEvent {
  readonly class: 'http_activity';
  readonly time: number;
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  /**
   * The route template (`/orders/{id}`, see src/events/path-template.ts). Not filled on the
   * request path: the sinks add it when they ship the event.
   */
  readonly pathTemplate?: string;
  readonly status: number;
  readonly verdict: 'allowed' | 'denied';
  readonly policy: string;
  readonly reason?: string;
  readonly latencyMs: number;
}

export type AgentEvent = FlowEvent | RequestEvent;

/** Where layers send events; the spool implements it. Must not throw or block. */
export interface EventRecorder {
  record(event: AgentEvent): void;
}

export const discardEvents: EventRecorder = Object.freeze({ record: () => undefined });
