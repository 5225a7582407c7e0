/**
 * L4 forwarding: splices a downstream stream to an upstream one in both directions, with an
 * idle timeout, and reports bytes and duration once both sides are closed.
 */
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { watchIdle } from './idle.js';

export interface ForwardResult {
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * Pipes `down` <-> `up`. Either side ending half-closes the other; an error or idle timeout on
 * either destroys both. `done` runs once.
 */
export function splice(down: Socket, up: Socket, idleTimeoutMs: number, done: (result: ForwardResult) => void): void {
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    done({ bytesIn: down.bytesRead, bytesOut: down.bytesWritten });
  };
  const destroyBoth = (): void => {
    down.destroy();
    up.destroy();
  };
  for (const s of [down, up] as Duplex[]) {
    s.on('error', destroyBoth);
  }
  const unwatch = watchIdle([down, up], idleTimeoutMs, destroyBoth);
  // Half-open both ways: one side's EOF (FIN, or close_notify then FIN) is passed on as an end of
  // the other (`relay`), and the opposite direction keeps flowing until its own EOF: a client
  // that shuts its write side after sending still gets the answer. Node's default would end this
  // side at once and lose it. A peer that never finishes is bounded by the idle timeout.
  down.allowHalfOpen = true;
  up.allowHalfOpen = true;
  down.setNoDelay(true);
  up.setNoDelay(true);
  let closed = 0;
  const onClose = (): void => {
    closed += 1;
    if (closed === 1) {
      unwatch();
      // The other side gets a short grace to flush, then goes too.
      setTimeout(destroyBoth, 1000).unref();
    }
    if (closed === 2) finish();
  };
  down.once('close', onClose);
  up.once('close', onClose);
  relay(down, up);
  relay(up, down);
  down.resume();
}

/**
 * One direction of a splice: `data` → `write`, backpressure by pause/resume, end → half-close.
 * Lighter than `pipe()` (no per-chunk stream bookkeeping); listeners are per connection, not
 * per chunk.
 */
function relay(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => to.end());
}
