/**
 * L4 forwarding: splices a downstream stream to an upstream one in both directions, with an
 * idle timeout, and reports bytes and duration once both sides are closed.
 */
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

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
  down.setTimeout(idleTimeoutMs, destroyBoth);
  up.setTimeout(idleTimeoutMs, destroyBoth);
  down.setNoDelay(true);
  up.setNoDelay(true);
  let closed = 0;
  const onClose = (): void => {
    closed += 1;
    if (closed === 1) {
      // The other side gets a short grace to flush, then goes too.
      setTimeout(destroyBoth, 1000).unref();
    }
    if (closed === 2) finish();
  };
  down.once('close', onClose);
  up.once('close', onClose);
  down.pipe(up);
  up.pipe(down);
  down.resume();
}
