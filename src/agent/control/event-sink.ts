/**
 * Ships the spool's batches to the server's ingest endpoint over the agent's mutual-TLS client.
 * The proxy's flow and request records become OCSF Network Activity (4001) and HTTP Activity
 * (4002) events here, at the edge, stamped with the served workload and the policy decision;
 * the spool's sequence numbers go unchanged, so a batch re-sent after a lost ack is stored once.
 */
import type { Clock } from '../../core/clock.js';
import { createEvent, type SequencedEvent } from '../../events/codec.js';
import { pathTemplate } from '../../events/path-template.js';
import { ACTIVITY, isSpiffeId, type WardEvent } from '../../events/types.js';
import type { AgentEvent } from '../events.js';
import type { EventBatch, EventSink } from '../spool/sink.js';
import type { ControlSession } from './session.js';

function endpoint(id: string, port?: number): { spiffe_id?: string; svc_name?: string; port?: number } {
  const out: { spiffe_id?: string; svc_name?: string; port?: number } = {};
  if (isSpiffeId(id)) out.spiffe_id = id;
  else if (/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(id)) out.svc_name = id;
  if (port !== undefined) out.port = port;
  return out;
}

function decisionOf(verdict: string, policy: string, reason: string | undefined): { policy: string; action: 'allow' | 'deny'; mode: 'enforce'; reason?: string } {
  return { policy: policy.slice(0, 253), action: verdict === 'allowed' ? 'allow' : 'deny', mode: 'enforce', ...(reason === undefined ? {} : { reason: reason.slice(0, 200) }) };
}

/** Maps one proxy record to an OCSF event for `workload`; throws if it cannot be represented. */
export function toWardEvent(e: AgentEvent, workload: string, clock: Clock): WardEvent {
  const action_id = e.verdict === 'allowed' ? 1 : 2;
  if (e.class === 'network_activity') {
    const local = endpoint(workload);
    const remote = endpoint(e.direction === 'inbound' ? e.source : e.destination);
    return createEvent({
      class_uid: 4001,
      activity_id: e.verdict === 'allowed' ? ACTIVITY.network.close : ACTIVITY.network.refuse,
      severity_id: e.verdict === 'allowed' ? 1 : 3,
      status_id: e.verdict === 'allowed' ? 1 : 2,
      action_id,
      time: e.time,
      workload: { spiffe_id: workload },
      src_endpoint: e.direction === 'inbound' ? remote : local,
      dst_endpoint: e.direction === 'inbound' ? { ...local, port: e.port } : { ...remote, port: e.port },
      connection_info: { protocol_name: 'tcp', direction_id: e.direction === 'inbound' ? 1 : 2 },
      traffic: { bytes_in: e.bytesIn, bytes_out: e.bytesOut },
      duration: Math.max(0, Math.round(e.durationMs)),
      decision: decisionOf(e.verdict, e.policy, e.reason),
    }, clock);
  }
  return createEvent({
    class_uid: 4002,
    activity_id: (ACTIVITY.http as Record<string, number>)[e.method.toLowerCase()] ?? ACTIVITY.http.other,
    severity_id: e.verdict === 'allowed' ? 1 : 3,
    status_id: e.verdict === 'allowed' ? 1 : 2,
    action_id,
    time: e.time,
    workload: { spiffe_id: workload },
    src_endpoint: endpoint(e.source),
    dst_endpoint: { ...endpoint(workload), port: e.port },
    http_request: { http_method: e.method, url: { path: e.path.slice(0, 2048), path_template: pathTemplate(e.path) } },
    http_response: { code: Math.min(599, Math.max(100, e.status)), latency: Math.max(0, Math.round(e.latencyMs)) },
    decision: decisionOf(e.verdict, e.policy, e.reason),
  }, clock);
}

export class ServerEventSink implements EventSink {
  /** Records that could not be represented as events and were skipped (never retried forever). */
  invalid = 0;

  constructor(
    private readonly session: ControlSession,
    private readonly workload: () => string,
    private readonly clock: Clock,
  ) {}

  async send(batch: EventBatch, signal: AbortSignal): Promise<void> {
    const out: SequencedEvent[] = [];
    for (const { seq, event } of batch.events) {
      try {
        out.push({ seq, event: toWardEvent(event as AgentEvent, this.workload(), this.clock) });
      } catch {
        this.invalid += 1;
      }
    }
    if (out.length === 0) return;
    if (signal.aborted) throw new Error('aborted');
    const res = await this.session.client().sendEvents({ agentId: this.session.agentId, batch: out });
    if (res.accepted + res.duplicates !== out.length) throw new Error(`server stored ${res.accepted + res.duplicates} of ${out.length} events`);
  }
}
