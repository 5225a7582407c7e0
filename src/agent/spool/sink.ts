/**
 * Where spooled events go. `send` resolves only when the receiver has durably accepted the
 * whole batch (an acknowledgement); any rejection means "retry the same batch later". The
 * receiver de-duplicates by (agentId, seq), so a batch re-sent after a lost ack is harmless.
 */
import { pathTemplate } from '../../events/path-template.js';

export interface EventBatch {
  readonly agentId: string;
  /** Events dropped by this agent's spool so far (bound reached); a running total. */
  readonly dropped: number;
  readonly events: readonly { readonly seq: number; readonly event: unknown }[];
}

export interface EventSink {
  send(batch: EventBatch, signal: AbortSignal): Promise<void>;
}

/** HTTP events gain their route template (`pathTemplate`) here, off the request path. */
function withTemplates(batch: EventBatch): EventBatch {
  const events = batch.events.map((e) => {
    const ev = e.event as { class?: unknown; path?: unknown; pathTemplate?: unknown } | null;
    if (ev === null || typeof ev !== 'object' || ev.class !== 'http_activity' || typeof ev.path !== 'string' || ev.pathTemplate !== undefined) return e;
    return { seq: e.seq, event: { ...ev, pathTemplate: pathTemplate(ev.path) } };
  });
  return { ...batch, events };
}

/** POSTs batches as JSON to a URL; any 2xx is an acknowledgement. */
export class HttpEventSink implements EventSink {
  constructor(private readonly url: URL, private readonly headers: Readonly<Record<string, string>> = {}) {}

  async send(batch: EventBatch, signal: AbortSignal): Promise<void> {
    const res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json', ...this.headers }, body: JSON.stringify(withTemplates(batch)), signal });
    await res.arrayBuffer();
    if (res.status < 200 || res.status > 299) throw new Error(`sink answered ${res.status}`);
  }
}
