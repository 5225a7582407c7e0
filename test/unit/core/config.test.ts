import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseByteSize, deepFreeze } from '../../../src/core/config.js';
import { WardError } from '../../../src/core/errors.js';
import { ManualClock } from '../../../src/core/clock.js';

test('parseDuration accepts compound units and bare milliseconds', () => {
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration(42), 42);
});

test('parseDuration rejects garbage with a stable code', () => {
  for (const bad of ['', 'h', '1x', '1h foo', '-1s', '1h 30m', 'ms']) {
    assert.throws(() => parseDuration(bad, 'svid.ttl'), (e: unknown) => e instanceof WardError && e.code === 'ERR_DURATION_INVALID' && e.details?.path === 'svid.ttl', bad);
  }
  assert.throws(() => parseDuration(-5), /ERR_DURATION_INVALID|not a non-negative/);
});

test('parseByteSize handles SI and IEC units', () => {
  assert.equal(parseByteSize('512'), 512);
  assert.equal(parseByteSize('64KiB'), 65536);
  assert.equal(parseByteSize('10MB'), 10_000_000);
  assert.throws(() => parseByteSize('10 parsecs'), (e: unknown) => e instanceof WardError && e.code === 'ERR_BYTE_SIZE_INVALID');
});

test('deepFreeze freezes nested objects', () => {
  const cfg = deepFreeze({ a: { b: [1, 2] } });
  assert.ok(Object.isFrozen(cfg.a) && Object.isFrozen(cfg.a.b));
});

test('ManualClock moves only when told', () => {
  const clock = new ManualClock('2026-01-01T00:00:00Z');
  assert.equal(clock.now(), Date.UTC(2026, 0, 1));
  clock.advance(1000);
  assert.equal(clock.now(), Date.UTC(2026, 0, 1) + 1000);
  assert.throws(() => new ManualClock('not a date'));
});

test('WardError serialises code, message and details but not the cause', () => {
  const e = new WardError('ERR_CONFIG_INVALID', 'x: bad', { details: { path: 'x' }, cause: new Error('secret internals') });
  assert.deepEqual(JSON.parse(JSON.stringify(e)), { code: 'ERR_CONFIG_INVALID', message: 'x: bad', details: { path: 'x' } });
});
