/**
 * A resumable Pod watch, as client-go's reflector does it: list, then watch from the list's
 * resourceVersion with bookmarks; remember the last resourceVersion seen (from events and
 * BOOKMARKs) and resume from it when the stream ends; on `410 Gone` (an in-stream ERROR event
 * with a Status of code 410, or an HTTP 410) relist and replace the cache, emitting DELETED for
 * pods that vanished while we were away.
 */
import { PlatformError } from '../errors.js';
import { isPlainObject } from '../evidence.js';
import type { KubeClient, ListOptions, PodJson } from './client.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: Readonly<Record<string, unknown>>;
}

/** Max bytes of one watch event line (a Pod is typically < 64 KiB). */
export const MAX_WATCH_LINE = 4 * 1024 * 1024;

const TYPES: ReadonlySet<string> = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** Parses one line of a watch stream. Throws ERR_PLATFORM_RESPONSE_INVALID. */
export function parseWatchLine(line: string): WatchEvent {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new PlatformError('ERR_PLATFORM_RESPONSE_INVALID', 'watch event is not JSON');
  }
  if (!isPlainObject(v) || typeof v.type !== 'string' || !TYPES.has(v.type) || !isPlainObject(v.object)) {
    throw new PlatformError('ERR_PLATFORM_RESPONSE_INVALID', 'watch event lacks a known type or an object');
  }
  return { type: v.type as WatchEventType, object: v.object };
}

/** Splits a byte stream into lines, bounded. */
export async function* watchLines(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let buffered = '';
  for await (const chunk of stream) {
    buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line.length > 0) yield line;
    }
    if (buffered.length > MAX_WATCH_LINE) throw new PlatformError('ERR_PLATFORM_RESPONSE_TOO_LARGE', 'watch event line too long', { details: { limit: MAX_WATCH_LINE } });
  }
  if (buffered.trim().length > 0) yield buffered.trim();
}

function metaOf(obj: Readonly<Record<string, unknown>>): { uid?: string; resourceVersion?: string } {
  const m = obj.metadata;
  if (!isPlainObject(m)) return {};
  return {
    ...(typeof m.uid === 'string' ? { uid: m.uid } : {}),
    ...(typeof m.resourceVersion === 'string' ? { resourceVersion: m.resourceVersion } : {}),
  };
}

/** What a PodWatcher reports, in order. */
export type PodWatchNotice =
  | { readonly kind: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly pod: PodJson }
  | { readonly kind: 'BOOKMARK'; readonly resourceVersion: string }
  | { readonly kind: 'RELIST'; readonly resourceVersion: string; readonly reason: 'start' | 'gone' };

export interface PodWatcherOptions extends ListOptions {
  readonly client: KubeClient;
  readonly onNotice: (notice: PodWatchNotice) => void;
  /** Server-side watch timeout (seconds) before the stream ends and is resumed; default 300. */
  readonly timeoutSeconds?: number;
  /** Called with errors the loop retries after; default ignore. */
  readonly onError?: (error: unknown) => void;
  /** Delay between retries after an error (ms); default 1000. */
  readonly retryDelayMs?: number;
}

/** Watches Pods until `signal` aborts; `run()` resolves then. */
export class PodWatcher {
  readonly #o: PodWatcherOptions;
  readonly #cache = new Map<string, PodJson>();
  #resourceVersion = '';
  /** Number of relists done (1 at start, +1 per 410). */
  relists = 0;
  /** Number of watch connections opened. */
  watches = 0;

  constructor(options: PodWatcherOptions) {
    this.#o = options;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Current pods by uid. */
  pods(): ReadonlyMap<string, PodJson> {
    return this.#cache;
  }

  async #relist(reason: 'start' | 'gone', signal: AbortSignal): Promise<void> {
    const { items, resourceVersion } = await this.#o.client.listPods(this.#listOptions(), signal);
    const seen = new Set<string>();
    for (const pod of items) {
      const uid = metaOf(pod).uid;
      if (uid === undefined) continue;
      seen.add(uid);
      const prev = this.#cache.get(uid);
      this.#cache.set(uid, pod);
      if (reason === 'gone' && (prev === undefined || metaOf(prev).resourceVersion !== metaOf(pod).resourceVersion)) {
        this.#o.onNotice({ kind: prev === undefined ? 'ADDED' : 'MODIFIED', pod });
      }
    }
    for (const [uid, pod] of this.#cache) {
      if (!seen.has(uid)) {
        this.#cache.delete(uid);
        this.#o.onNotice({ kind: 'DELETED', pod });
      }
    }
    this.#resourceVersion = resourceVersion;
    this.relists++;
    this.#o.onNotice({ kind: 'RELIST', resourceVersion, reason });
  }

  #listOptions(): ListOptions {
    return { ...(this.#o.fieldSelector ? { fieldSelector: this.#o.fieldSelector } : {}), ...(this.#o.labelSelector ? { labelSelector: this.#o.labelSelector } : {}) };
  }

  /** One watch connection; resolves 'gone' on 410, 'ended' when the stream closes. */
  async #watchOnce(signal: AbortSignal): Promise<'gone' | 'ended'> {
    let res;
    try {
      res = await this.#o.client.openPodWatch(this.#resourceVersion, { ...this.#listOptions(), timeoutSeconds: this.#o.timeoutSeconds ?? 300 }, signal);
    } catch (error) {
      if (error instanceof PlatformError && error.code === 'ERR_PLATFORM_HTTP_STATUS' && error.details?.status === 410) return 'gone';
      throw error;
    }
    this.watches++;
    try {
      for await (const line of watchLines(res)) {
        const event = parseWatchLine(line);
        if (event.type === 'ERROR') {
          const code = event.object.code;
          if (code === 410) return 'gone';
          throw new PlatformError('ERR_PLATFORM_HTTP_STATUS', `watch error event: ${String(event.object.reason ?? 'unknown')}`, { details: { status: typeof code === 'number' ? code : 0 } });
        }
        const meta = metaOf(event.object);
        if (meta.resourceVersion !== undefined) this.#resourceVersion = meta.resourceVersion;
        if (event.type === 'BOOKMARK') {
          this.#o.onNotice({ kind: 'BOOKMARK', resourceVersion: this.#resourceVersion });
          continue;
        }
        if (meta.uid === undefined) continue;
        if (event.type === 'DELETED') this.#cache.delete(meta.uid);
        else this.#cache.set(meta.uid, event.object);
        this.#o.onNotice({ kind: event.type, pod: event.object });
      }
      return 'ended';
    } finally {
      res.destroy();
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    let needList: 'start' | 'gone' | undefined = 'start';
    while (!signal.aborted) {
      try {
        if (needList !== undefined) {
          await this.#relist(needList, signal);
          needList = undefined;
        }
        const outcome = await this.#watchOnce(signal);
        if (outcome === 'gone') needList = 'gone';
      } catch (error) {
        if (signal.aborted) break;
        this.#o.onError?.(error);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.#o.retryDelayMs ?? 1000);
          signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
      }
    }
  }
}
