// A watch stream whose reader stopped reading is cut off once `bufferLimitBytes` is queued:
// the server's memory per stream is bounded by the limit plus one message, however many
// changes follow. A stream that is no longer valid (expired or revoked SVID) writes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { WatchMessage } from '../../../src/api/types.js';
import { openWatchStream } from '../../../src/server/routes/agent.js';

/** A real Writable whose consumer never reads: writes queue up in writableLength. */
function stalled(): Writable & { ended: boolean; destroyedByServer: boolean } {
  const w = new Writable({ highWaterMark: 1024, write: () => undefined }) as Writable & { ended: boolean; destroyedByServer: boolean };
  w.ended = false;
  w.destroyedByServer = false;
  const end = w.end.bind(w);
  w.end = ((...args: unknown[]) => {
    w.ended = true;
    return end(...(args as []));
  }) as typeof w.end;
  w.on('close', () => (w.destroyedByServer = true));
  return w;
}

const message = (v: number): WatchMessage => ({ type: 'policies', resourceVersion: v, policies: [{ name: 'p'.repeat(10_000), kind: 'AccessPolicy', document: {} }] } as unknown as WatchMessage);

test('a stalled reader is cut off at the buffer limit; memory stays bounded', () => {
  const res = stalled();
  const limit = 64 * 1024;
  const stream = openWatchStream(res, { agentId: 'a', bufferLimitBytes: limit, heartbeatMs: 60_000, stillValid: () => true, untilMs: 60_000 });
  let sent = 0;
  for (let v = 1; v <= 1000; v++) if (stream.send(message(v))) sent++;
  assert.ok(sent < 20, `sent ${sent} messages to a reader that reads nothing`);
  assert.ok(res.writableLength <= limit + 20_000 || res.destroyed, `queued ${res.writableLength} bytes`);
  assert.equal(res.ended, true, 'the stream was ended');
  assert.equal(stream.send(message(1001)), false);
  stream.close();
  res.destroy();
});

test('an invalid stream (expired or revoked SVID) is ended before anything more is written', () => {
  const res = stalled();
  let valid = true;
  const stream = openWatchStream(res, { agentId: 'a', bufferLimitBytes: 1 << 20, heartbeatMs: 60_000, stillValid: () => valid, untilMs: 60_000 });
  assert.equal(stream.send(message(1)), true);
  const queued = res.writableLength;
  valid = false;
  assert.equal(stream.send(message(2)), false);
  assert.equal(res.writableLength, queued, 'nothing written after the SVID stopped being valid');
  assert.equal(res.ended, true);
  res.destroy();
});
