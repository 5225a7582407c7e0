// The watch client's liveness against a real local HTTP server: heartbeat comments count as
// activity (reported, and they keep the stream alive past the idle timeout); a stream that goes
// silent without closing its TCP connection, or a server that never answers, is given up after
// the idle timeout with ERR_API_UNREACHABLE / `idle_timeout`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WATCH_IDLE_TIMEOUT, WardClient } from '../../../src/api/client.js';
import { ApiError } from '../../../src/api/errors.js';
import { encodeSse, encodeSseComment } from '../../../src/api/sse.js';
import type { WatchMessage } from '../../../src/api/types.js';
import { withServer } from './support.js';

const revocations = (rv: number): string => encodeSse({ id: String(rv), event: 'revocations', data: JSON.stringify({ type: 'revocations', resourceVersion: rv, revocations: [] }) });

test('watch: heartbeats keep a stream alive; silence without a close ends it after the idle timeout', { timeout: 10_000 }, async () => {
  const IDLE = 400;
  const HEARTBEATS = 8; // every 100 ms: 800 ms of heartbeats only, twice the idle timeout
  let lastByteAt = 0;
  await withServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(revocations(7));
    lastByteAt = performance.now();
    let n = 0;
    const beat = setInterval(() => {
      res.write(encodeSseComment('heartbeat'));
      lastByteAt = performance.now();
      if (++n === HEARTBEATS) clearInterval(beat); // then silence; the socket stays open
    }, 100);
    res.on('close', () => clearInterval(beat));
  }, async (url) => {
    const c = new WardClient({ baseUrl: url });
    const got: WatchMessage[] = [];
    let activity = 0;
    const t0 = performance.now();
    const error = await c.watch({ signal: new AbortController().signal, idleTimeoutMs: IDLE, onMessage: (m) => got.push(m), onActivity: () => (activity += 1) }).then(
      () => assert.fail('a silent stream must not end quietly'),
      (e: unknown) => e,
    );
    const ended = performance.now();
    c.close();
    assert.ok(error instanceof ApiError && error.code === 'ERR_API_UNREACHABLE', String(error));
    assert.equal(error.details?.reason, WATCH_IDLE_TIMEOUT);
    assert.equal(error.details?.idleTimeoutMs, IDLE);
    assert.deepEqual(got.map((m) => m.resourceVersion), [7]);
    assert.ok(activity >= 1 + HEARTBEATS, `head, message and every heartbeat reported (${activity})`);
    assert.ok(ended - t0 >= HEARTBEATS * 100, `heartbeats kept the stream alive (${Math.round(ended - t0)} ms)`);
    const silent = ended - lastByteAt;
    assert.ok(silent >= IDLE - 20 && silent < IDLE + 400, `given up ${Math.round(silent)} ms after the last byte`);
  });
});

test('watch: a server that accepts the connection and never answers is given up after the idle timeout', { timeout: 10_000 }, async () => {
  await withServer(() => undefined, async (url) => {
    const c = new WardClient({ baseUrl: url });
    const t0 = performance.now();
    const error = await c.watch({ signal: new AbortController().signal, idleTimeoutMs: 300, onMessage: () => undefined }).then(() => undefined, (e: unknown) => e);
    c.close();
    assert.ok(error instanceof ApiError && error.code === 'ERR_API_UNREACHABLE' && error.details?.reason === WATCH_IDLE_TIMEOUT, String(error));
    const ms = performance.now() - t0;
    assert.ok(ms >= 280 && ms < 1000, `after ${Math.round(ms)} ms`);
  });
});

test('watch: without idleTimeoutMs a silent stream stays open until aborted; a bad timeout is refused', { timeout: 10_000 }, async () => {
  await withServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(revocations(3));
  }, async (url) => {
    const c = new WardClient({ baseUrl: url });
    const ac = new AbortController();
    let state = 'pending';
    const p = c.watch({ signal: ac.signal, onMessage: () => undefined }).then((rv) => {
      state = `resolved ${rv}`;
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(state, 'pending');
    ac.abort();
    await p;
    assert.equal(state, 'resolved 3', 'aborting resolves with the version to resume from');
    await assert.rejects(c.watch({ signal: ac.signal, idleTimeoutMs: 0, onMessage: () => undefined }), (e: unknown) => e instanceof ApiError && e.code === 'ERR_API_INPUT');
    c.close();
  });
});
