import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createEvent, decodeBatch, decodeEvent, encodeBatch, isSpiffeId, toStrictOcsf, EventError,
  type AgentBatch, type WardEvent,
} from '../../../src/events/index.js';
import { clock, sampleEvents } from './fixtures.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof EventError, `expected EventError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a throw');
}

function clone<T>(v: T): Record<string, unknown> {
  return JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
}

test('createEvent stamps category, type_uid, time and metadata for every class', () => {
  const events = sampleEvents();
  assert.deepEqual(events.map((e) => e.class_uid), [4001, 4002, 1007, 2004, 2002, 3003]);
  assert.deepEqual(events.map((e) => e.category_uid), [4, 4, 1, 2, 2, 3]);
  assert.deepEqual(events.map((e) => e.type_uid), [400106, 400206, 100701, 200401, 200201, 300399]);
  for (const e of events) {
    assert.equal(e.time, clock.now());
    assert.equal(e.metadata.version, '1.3.0');
    assert.equal(e.metadata.product.name, 'Ward');
    assert.equal(e.workload.spiffe_id, 'spiffe://prod.example/ns/shop/sa/orders');
  }
  assert.equal(events[2]?.metadata.uid, 'evt-3');
});

test('decodeEvent round-trips every sample and returns fresh objects', () => {
  for (const e of sampleEvents()) {
    const raw = clone(e);
    const decoded = decodeEvent(raw);
    assert.deepEqual(decoded, e);
    assert.notEqual(decoded, raw);
  }
});

test('decision: dry-run and learn need would_have, enforce forbids it', () => {
  const http = clone(sampleEvents()[1]);
  (http['decision'] as Record<string, unknown>)['would_have'] = undefined;
  delete (http['decision'] as Record<string, unknown>)['would_have'];
  assert.equal(code(() => decodeEvent(http)), 'ERR_EVENT_INVALID');
  const net = clone(sampleEvents()[0]);
  (net['decision'] as Record<string, unknown>)['would_have'] = 'allow';
  assert.equal(code(() => decodeEvent(net)), 'ERR_EVENT_INVALID');
  (net['decision'] as Record<string, unknown>)['mode'] = 'audit';
  assert.equal(code(() => decodeEvent(net)), 'ERR_EVENT_INVALID');
});

test('decodeEvent rejects unknown classes, unknown fields and inconsistent ids with codes and paths', () => {
  const net = clone(sampleEvents()[0]);
  assert.equal(code(() => decodeEvent({ ...net, class_uid: 6003 })), 'ERR_EVENT_UNKNOWN_CLASS');
  assert.equal(code(() => decodeEvent({ ...net, class_uid: '4001' })), 'ERR_EVENT_UNKNOWN_CLASS');
  assert.equal(code(() => decodeEvent([net])), 'ERR_EVENT_INVALID');
  try {
    decodeEvent({ ...net, extra: 1 });
    assert.fail('accepted an unknown field');
  } catch (e) {
    assert.ok(e instanceof EventError && e.code === 'ERR_EVENT_INVALID' && e.details?.['path'] === 'event.extra');
  }
  assert.equal(code(() => decodeEvent(JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(net).slice(1)}`))), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeEvent({ ...net, type_uid: 400101 })), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeEvent({ ...net, category_uid: 2 })), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeEvent({ ...net, time: -1 })), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeEvent({ ...net, time: 1.5 })), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeEvent({ ...net, severity_id: 7 })), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeEvent({ ...net, workload: { spiffe_id: 'spiffe://Bad.Domain/x' } })), 'ERR_EVENT_INVALID');
  const { workload: _w, ...noWorkload } = net;
  assert.equal(code(() => decodeEvent(noWorkload)), 'ERR_EVENT_INVALID');
  const dst = { ...(net['dst_endpoint'] as object), port: 70000 };
  assert.equal(code(() => decodeEvent({ ...net, dst_endpoint: dst })), 'ERR_EVENT_INVALID');
});

test('string limits bound every event', () => {
  const proc = clone(sampleEvents()[2]);
  (proc['process'] as Record<string, unknown>)['cmd_line'] = 'a'.repeat(8193);
  assert.equal(code(() => decodeEvent(proc)), 'ERR_EVENT_INVALID');
  (proc['process'] as Record<string, unknown>)['cmd_line'] = 'a'.repeat(8192);
  assert.equal(decodeEvent(proc).class_uid, 1007);
});

test('isSpiffeId follows the SPIFFE ID rules', () => {
  for (const ok of ['spiffe://example.org', 'spiffe://example.org/ns/a/sa/b', 'spiffe://td-1_x.org/a.b/c-d_e']) assert.ok(isSpiffeId(ok), ok);
  for (const bad of ['spiffe://', 'spiffe://Example.org/a', 'spiffe://example.org/', 'spiffe://example.org//a', 'spiffe://example.org/a/../b',
    'spiffe://example.org/./a', 'spiffe://example.org:8080/a', 'spiffe://u@example.org/a', 'spiffe://example.org/a?q', 'spiffe://example.org/a#f',
    'https://example.org/a', `spiffe://example.org/${'a'.repeat(2040)}`]) assert.ok(!isSpiffeId(bad), bad);
});

function batchOf(events: WardEvent[], start = 1): AgentBatch {
  return { agentId: 'spiffe://prod.example/ward/agent/node-1', batch: events.map((event, i) => ({ seq: start + i, event })) };
}

test('encodeBatch/decodeBatch round-trip text and bytes', () => {
  const batch = batchOf(sampleEvents());
  const text = encodeBatch(batch);
  assert.deepEqual(decodeBatch(text), batch);
  assert.deepEqual(decodeBatch(new TextEncoder().encode(text)), batch);
  assert.deepEqual(decodeBatch('{"agentId":"a1","batch":[]}'), { agentId: 'a1', batch: [] });
});

test('decodeBatch enforces limits, JSON well-formedness and increasing sequence numbers', () => {
  const batch = batchOf(sampleEvents());
  const text = encodeBatch(batch);
  assert.equal(code(() => decodeBatch(text, { maxBytes: text.length - 1, maxEvents: 100 })), 'ERR_EVENT_TOO_LARGE');
  assert.equal(code(() => decodeBatch(text, { maxBytes: 1e6, maxEvents: 5 })), 'ERR_EVENT_TOO_LARGE');
  // multi-byte characters count in bytes, not UTF-16 units
  const wide = `{"agentId":"a","batch":[],"x":"${'é'.repeat(600)}"}`;
  assert.equal(code(() => decodeBatch(wide, { maxBytes: 1000, maxEvents: 5 })), 'ERR_EVENT_TOO_LARGE');
  assert.equal(code(() => decodeBatch(text.slice(0, -1))), 'ERR_EVENT_JSON');
  assert.equal(code(() => decodeBatch('')), 'ERR_EVENT_JSON');
  assert.equal(code(() => decodeBatch(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]))), 'ERR_EVENT_JSON');
  assert.equal(code(() => decodeBatch('null')), 'ERR_EVENT_INVALID');
  const dup = { ...batch, batch: [batch.batch[0], { ...batch.batch[1], seq: 1 }] };
  assert.equal(code(() => decodeBatch(JSON.stringify(dup))), 'ERR_EVENT_SEQUENCE');
  assert.equal(code(() => decodeBatch(JSON.stringify({ ...batch, agentId: 'has space' }))), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeBatch(JSON.stringify({ ...batch, agentId: '' }))), 'ERR_EVENT_INVALID');
  assert.equal(code(() => decodeBatch(JSON.stringify({ agentId: 'a', batch: [{ seq: -1, event: batch.batch[0]?.event }] }))), 'ERR_EVENT_INVALID');
  assert.equal(code(() => encodeBatch(dup as AgentBatch)), 'ERR_EVENT_SEQUENCE');
});

test('createEvent refuses to build an invalid event', () => {
  assert.throws(() => createEvent({
    class_uid: 4001, activity_id: 6, severity_id: 1, workload: { spiffe_id: 'not-a-spiffe-id' },
    src_endpoint: {}, dst_endpoint: {}, connection_info: { protocol_name: 'tcp', direction_id: 1 },
  }, clock), (e: unknown) => e instanceof EventError && e.code === 'ERR_EVENT_INVALID');
});

test('toStrictOcsf moves Ward extensions under unmapped and keeps the OCSF fields', () => {
  const [net] = sampleEvents();
  const ocsf = toStrictOcsf(net!);
  assert.equal(ocsf['class_uid'], 4001);
  assert.equal(ocsf['workload'], undefined);
  assert.equal(ocsf['decision'], undefined);
  assert.deepEqual(ocsf['unmapped'], { workload: net!.workload, decision: net!.decision });
  assert.deepEqual(toStrictOcsf(sampleEvents()[3]!)['unmapped'], { workload: { spiffe_id: 'spiffe://prod.example/ns/shop/sa/orders' } });
});
