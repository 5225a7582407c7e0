// The lean runtime's memory trims (ADR 0075) never stop the agent: a trim that fails (no
// /proc/self/smaps in a sandbox) turns trimming off, is said once at warn, and settle returns
// undefined instead of throwing. The real trims are tested with real processes in
// test/integration/agent-runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memorySettler } from '../../../src/cli/commands/agent/lean.js';

function recorder(): { debug: (...args: unknown[]) => void; warn: (...args: unknown[]) => void; lines: string[] } {
  const lines: string[] = [];
  return { lines, debug: (...args) => void lines.push(`debug ${String(args[1])}`), warn: (...args) => void lines.push(`warn ${String(args[1])}`) };
}

test('a failing trim: no throw at start or at settle, one warn, then no further attempt', () => {
  let calls = 0;
  const settle = memorySettler(() => {
    calls++;
    throw Object.assign(new Error('cannot read /proc/self/smaps'), { code: 'ERR_RELAY_MEMORY' });
  });
  assert.equal(calls, 1, 'tried once at start');
  const log = recorder();
  assert.equal(settle(log), undefined);
  assert.equal(settle(log), undefined);
  assert.deepEqual(log.lines, ['warn memory trim unavailable; the agent runs without it (ADR 0075)']);
  assert.equal(calls, 1, 'never tried again');
});

test('a working trim: released at start and at settle, logged at debug', () => {
  let calls = 0;
  const settle = memorySettler(() => ({ filePagesKb: ++calls * 1000, mappings: 3, heapTrimmed: true }));
  const log = recorder();
  assert.deepEqual(settle(log), { filePagesKb: 2000, mappings: 3, heapTrimmed: true });
  assert.deepEqual(log.lines, ['debug start-up memory released']);
});
