/**
 * Coarse idle timeouts for many sockets with one timer. `socket.setTimeout` re-arms a timer on
 * every read and write, a measurable cost per chunk on the proxy's hot path; here each watched
 * group is checked a few times per timeout period instead: if none of its sockets moved a byte
 * since the last check and the period has passed, `onIdle` runs once. Resolution is a quarter
 * of the shortest timeout watched (clamped to 25 ms–1 s); time is monotonic
 * (`performance.now`), so wall-clock changes never close or keep connections.
 */
import type { Socket } from 'node:net';

interface Watched {
  readonly sockets: readonly Socket[];
  readonly timeoutMs: number;
  readonly onIdle: () => void;
  bytes: number;
  since: number;
}

const watched = new Set<Watched>();
let timer: NodeJS.Timeout | undefined;
let periodMs = Infinity;

function activity(sockets: readonly Socket[]): number {
  let n = 0;
  for (const s of sockets) n += s.bytesRead + s.bytesWritten;
  return n;
}

function sweep(): void {
  const now = performance.now();
  for (const w of watched) {
    const bytes = activity(w.sockets);
    if (bytes !== w.bytes) {
      w.bytes = bytes;
      w.since = now;
    } else if (now - w.since >= w.timeoutMs) {
      watched.delete(w);
      w.onIdle();
    }
  }
  if (watched.size === 0 && timer !== undefined) {
    clearInterval(timer);
    timer = undefined;
    periodMs = Infinity;
  }
}

/** Runs `onIdle` once when `sockets` have been idle for `timeoutMs`. Returns the unwatch function. */
export function watchIdle(sockets: readonly Socket[], timeoutMs: number, onIdle: () => void): () => void {
  const w: Watched = { sockets, timeoutMs, onIdle, bytes: activity(sockets), since: performance.now() };
  watched.add(w);
  const period = Math.min(1000, Math.max(25, Math.floor(timeoutMs / 4)));
  if (timer === undefined || period < periodMs) {
    if (timer !== undefined) clearInterval(timer);
    periodMs = period;
    timer = setInterval(sweep, period);
    timer.unref();
  }
  return () => void watched.delete(w);
}

/** Number of watched groups (for tests and metrics). */
export function watchedCount(): number {
  return watched.size;
}
