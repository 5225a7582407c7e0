/**
 * Fan-out of the per-agent watch stream. Every connected agent has a {@link WatchSubscriber};
 * on each change the hub asks the {@link ViewSource} what each subscriber lacks and sends it.
 * Changes are coalesced: many commits in one turn of the event loop cost one pass.
 *
 * The hub knows nothing of what a view contains; the source (the registry view) decides, from
 * the subscriber's {@link WatchCursor}, which messages bring it up to date.
 */
import { createHash } from 'node:crypto';
import type { WatchMessage, WatchMessageType } from '../../api/types.js';

/** What one subscriber already holds. Mutated only by the view source. */
export interface WatchCursor {
  /** Content hash of the last whole-state part of each type it holds. */
  readonly hashes: Map<WatchMessageType, string>;
  /** Resource version up to which it holds workload attributes; undefined before the first. */
  attributesVersion: number | undefined;
  /** Which slice of the attribute table it holds (see the view's needs). */
  needKey: string | undefined;
}

export interface WatchSubscriber {
  readonly agentId: string;
  readonly cursor: WatchCursor;
  /** Writes one message; returns false when the connection is gone. */
  send(message: WatchMessage): boolean;
  /** Ends the stream (revoked agent). */
  end(): void;
}

export interface ViewSource {
  /** Messages a new subscriber resuming after `sinceVersion` (undefined: from nothing) needs. */
  initial(agentId: string, cursor: WatchCursor, sinceVersion: number | undefined): readonly WatchMessage[];
  /** Messages that bring a connected subscriber up to date; empty when it is. */
  catchUp(agentId: string, cursor: WatchCursor): readonly WatchMessage[];
  /** False once the agent is revoked or gone: its streams are ended. */
  allowed(agentId: string): boolean;
}

export function newCursor(): WatchCursor {
  return { hashes: new Map(), attributesVersion: undefined, needKey: undefined };
}

const hashCache = new WeakMap<WatchMessage, string>();
const jsonCache = new WeakMap<WatchMessage, string>();

/**
 * Content hash of a part, without its version. Memoised by object identity: the view source
 * hands the same frozen part object to every agent that sees the same content, so a fleet-wide
 * change is hashed and serialised once, not once per agent.
 */
export function partHash(message: WatchMessage): string {
  let hash = hashCache.get(message);
  if (hash === undefined) {
    const { resourceVersion: _v, ...content } = message;
    hash = createHash('sha256').update(JSON.stringify(content)).digest('base64url');
    hashCache.set(message, hash);
  }
  return hash;
}

/** JSON of a part, memoised like {@link partHash}. */
export function partJson(message: WatchMessage): string {
  let json = jsonCache.get(message);
  if (json === undefined) {
    json = JSON.stringify(message);
    jsonCache.set(message, json);
  }
  return json;
}

export class WatchHub {
  readonly #subscribers = new Map<string, Set<WatchSubscriber>>();
  readonly #source: ViewSource;
  #pending = false;
  #flushes = 0;
  #sent = 0;

  constructor(source: ViewSource) {
    this.#source = source;
  }

  get connections(): number {
    let n = 0;
    for (const set of this.#subscribers.values()) n += set.size;
    return n;
  }

  /** Open streams of one agent. */
  connectionsOf(agentId: string): number {
    return this.#subscribers.get(agentId)?.size ?? 0;
  }

  /** Fan-out passes done and messages sent (metrics, tests). */
  get stats(): { flushes: number; sent: number } {
    return { flushes: this.#flushes, sent: this.#sent };
  }

  /** Adds a subscriber, sends what it lacks, and returns the unsubscribe function. */
  subscribe(sub: WatchSubscriber, sinceVersion: number | undefined): () => void {
    for (const msg of this.#source.initial(sub.agentId, sub.cursor, sinceVersion)) {
      this.#sent++;
      if (!sub.send(msg)) return () => undefined;
    }
    let set = this.#subscribers.get(sub.agentId);
    if (set === undefined) this.#subscribers.set(sub.agentId, (set = new Set()));
    set.add(sub);
    return () => {
      const s = this.#subscribers.get(sub.agentId);
      if (s === undefined) return;
      s.delete(sub);
      if (s.size === 0) this.#subscribers.delete(sub.agentId);
    };
  }

  /** Signals that the view changed; the fan-out runs once on the next turn of the loop. */
  changed(): void {
    if (this.#pending) return;
    this.#pending = true;
    setImmediate(() => {
      this.#pending = false;
      this.flush();
    });
  }

  /** Runs one fan-out pass now. */
  flush(): void {
    this.#flushes++;
    for (const [agentId, set] of this.#subscribers) {
      if (!this.#source.allowed(agentId)) {
        this.#subscribers.delete(agentId);
        for (const sub of set) sub.end();
        continue;
      }
      for (const sub of set) {
        for (const msg of this.#source.catchUp(agentId, sub.cursor)) {
          this.#sent++;
          if (!sub.send(msg)) {
            set.delete(sub);
            break;
          }
        }
      }
    }
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    for (const set of this.#subscribers.values()) for (const sub of set) sub.end();
    this.#subscribers.clear();
  }
}
