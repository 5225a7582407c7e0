// Fuzz: random and mutated batches never crash the codec; every failure is an EventError with a code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBatch, decodeEvent, encodeBatch, EVENT_ERRORS, EventError } from '../../src/events/index.js';
import { sampleEvents } from '../unit/events/fixtures.js';

const CODES = new Set(Object.keys(EVENT_ERRORS));

function expectCodedOrOk(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof EventError, `non-EventError escaped: ${String(e)}`);
    assert.ok(CODES.has(e.code), e.code);
  }
}

const validText = encodeBatch({ agentId: 'agent-1', batch: sampleEvents().map((event, i) => ({ seq: i, event })) });

test('random strings and bytes', () => {
  fc.assert(fc.property(fc.string({ maxLength: 2000 }), (s) => expectCodedOrOk(() => decodeBatch(s))), { numRuns: 500 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => expectCodedOrOk(() => decodeBatch(b))), { numRuns: 300 });
});

test('random JSON values as events and batches', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
    expectCodedOrOk(() => decodeEvent(v));
    expectCodedOrOk(() => decodeBatch(JSON.stringify({ agentId: 'a', batch: [{ seq: 1, event: v }] })));
  }), { numRuns: 400 });
});

test('byte-level mutations of a valid batch', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(validText.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (muts) => {
    const bytes = new TextEncoder().encode(validText);
    for (const [pos, val] of muts) bytes[pos % bytes.length] = val;
    expectCodedOrOk(() => decodeBatch(bytes));
  }), { numRuns: 500 });
});

test('structural mutations: replace any field of a valid event with a random JSON value', () => {
  const events = sampleEvents().map((e) => JSON.parse(JSON.stringify(e)) as Record<string, unknown>);
  const paths: Array<[number, string[]]> = [];
  const walk = (i: number, v: unknown, p: string[]): void => {
    paths.push([i, p]);
    if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(i, c, [...p, k]);
  };
  events.forEach((e, i) => walk(i, e, []));
  fc.assert(fc.property(fc.nat(paths.length - 1), fc.jsonValue({ maxDepth: 3 }), (pi, value) => {
    const [i, path] = paths[pi]!;
    const ev = JSON.parse(JSON.stringify(events[i])) as Record<string, unknown>;
    if (path.length === 0) return expectCodedOrOk(() => decodeEvent(value));
    let cur = ev as Record<string, unknown>;
    for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
    cur[path.at(-1)!] = value;
    expectCodedOrOk(() => decodeEvent(ev));
  }), { numRuns: 1000 });
});
