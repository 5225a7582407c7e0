// Fuzz the agent's parsers of untrusted input (bounded fast-check runs, part of the normal suite):
// request-target normalisation, spool records (disk is untrusted after a crash), static policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizeRequestTarget } from '../../src/agent/proxy/http/normalize-path.js';
import { decodeRecords, encodeRecord } from '../../src/agent/spool/record.js';
import { parseStaticPolicy } from '../../src/agent/proxy/static-authorizer.js';
import { isWardError } from '../../src/core/errors.js';

const pathChars = fc.constantFrom('/', '/', '.', '..', '%2e', '%2E', '%2f', '%5c', '\\', 'a', 'admin', 'public', '%41', '%', '%zz', '?', '#', ';', '%00', ' ', '~', '%7e');
const targets = fc.oneof(
  fc.array(pathChars, { maxLength: 12 }).map((parts) => `/${parts.join('')}`),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `/${s}`),
);

test('normalizeRequestTarget never throws; its output is canonical, idempotent and cannot climb above the root', () => {
  fc.assert(fc.property(targets, (target) => {
    const r = normalizeRequestTarget(target);
    if (!r.ok) return;
    assert.equal(r.path[0], '/');
    assert.ok(!r.path.includes('//'), r.path);
    const segments = r.path.split('/');
    assert.ok(!segments.includes('..') && !segments.includes('.'), r.path);
    assert.ok(!/%2f|%5c|\\/i.test(r.path), r.path);
    assert.ok(!/%2e/i.test(r.path), 'unreserved escapes are decoded');
    const again = normalizeRequestTarget(r.path + r.query);
    assert.ok(again.ok);
    assert.equal(again.path, r.path, 'idempotent');
  }), { numRuns: 3000 });
});

test('a path that does not start with /public/ after normalisation can never be made to look like one', () => {
  fc.assert(fc.property(fc.array(pathChars, { maxLength: 10 }), (parts) => {
    const r = normalizeRequestTarget(`/public/../${parts.join('')}`);
    if (r.ok && r.path.startsWith('/public/')) {
      // only possible if the suffix itself re-enters /public
      assert.ok(parts.join('').replace(/%2e/gi, '.').includes('public'));
    }
  }), { numRuns: 2000 });
});

test('decodeRecords never throws on arbitrary bytes and round-trips what encodeRecord wrote', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    const r = decodeRecords(Buffer.from(bytes));
    assert.ok(r.validBytes <= bytes.length);
  }), { numRuns: 2000 });
  fc.assert(fc.property(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 8 }), fc.nat({ max: 1e9 }), fc.nat({ max: 40 }), (events, start, cut) => {
    const buf = Buffer.concat(events.map((e, i) => encodeRecord({ seq: start + i + 1, event: e })));
    const full = decodeRecords(buf);
    assert.equal(full.corrupt, false);
    assert.equal(full.records.length, events.length);
    assert.deepEqual(full.records.map((r) => r.seq), events.map((_, i) => start + i + 1));
    // a torn tail keeps every complete record before it
    const torn = decodeRecords(buf.subarray(0, Math.max(0, buf.length - cut)));
    assert.ok(torn.records.length <= events.length);
    for (const [i, rec] of torn.records.entries()) assert.equal(rec.seq, start + i + 1);
  }), { numRuns: 500 });
});

test('parseStaticPolicy accepts or rejects with a coded error, never a crash', () => {
  const value = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }));
  const rule = fc.dictionary(fc.constantFrom('name', 'from', 'to', 'ports', 'methods', 'paths', 'hosts', 'headers', 'direction', 'bogus'), value);
  const doc = fc.record({
    kind: fc.constantFrom('AgentStaticPolicy', 'Other', undefined),
    metadata: fc.oneof(fc.record({ name: fc.oneof(fc.constant('ok-name'), fc.string()) }), value),
    spec: fc.oneof(fc.record({ action: fc.constantFrom('ALLOW', 'DENY', 'MAYBE', undefined), rules: fc.oneof(fc.array(rule, { maxLength: 3 }), value) }), value),
  });
  fc.assert(fc.property(doc, (d) => {
    try {
      parseStaticPolicy(d);
    } catch (error) {
      assert.ok(isWardError(error), String(error));
    }
  }), { numRuns: 2000 });
});
