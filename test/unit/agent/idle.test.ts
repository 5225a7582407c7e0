// The shared idle sweeper that replaces per-socket timers on the hot path: idle groups are
// closed once, active ones are kept, unwatched ones are forgotten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { watchIdle, watchedCount } from '../../../src/agent/proxy/idle.js';
import { startEchoApp, plainConnect, roundTrip } from './support/net.js';

test('an idle group is reported once after its timeout; an active one is not; unwatch forgets', async () => {
  const app = await startEchoApp();
  const idle = await plainConnect(app.port);
  const busy = await plainConnect(app.port);
  const gone = await plainConnect(app.port);
  try {
    let idleCalls = 0;
    let busyCalls = 0;
    let goneCalls = 0;
    const before = watchedCount();
    watchIdle([idle], 400, () => (idleCalls += 1));
    const unwatchBusy = watchIdle([busy], 400, () => (busyCalls += 1));
    const unwatchGone = watchIdle([gone], 400, () => (goneCalls += 1));
    unwatchGone();
    const started = performance.now();
    while (performance.now() - started < 1200) {
      await roundTrip(busy, 'x', 1, 200);
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal(idleCalls, 1, 'idle group closed once');
    assert.equal(busyCalls, 0, 'active group kept');
    assert.equal(goneCalls, 0, 'unwatched group forgotten');
    unwatchBusy();
    assert.equal(watchedCount(), before);
  } finally {
    for (const s of [idle, busy, gone]) s.destroy();
    await app.close();
  }
});
