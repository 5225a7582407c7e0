// Fuzz the agent's parsers of untrusted input (bounded fast-check runs, part of the normal suite):
// request-target normalisation, spool records (disk is untrusted after a crash), the static
// policy directory (Ward policies parsed, compiled and checked as static mode does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizeRequestTarget } from '../../src/agent/proxy/http/normalize-path.js';
import { decodeRecords, encodeRecord } from '../../src/agent/spool/record.js';
import { compileStaticPolicy, parsePolicyDir } from '../../src/agent/static-source.js';
import { parseAgentConfig, type AgentConfig } from '../../src/agent/config.js';
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

test('the static policy directory is accepted or refused with a coded error, never a crash', () => {
  const self = 'spiffe://example.org/ns/shop/sa/orders';
  const config = parseAgentConfig({
    identity: { svid: 's', key: 'k', bundle: 'b' }, policyDir: 'p',
    inbound: [{ port: 8443, appPort: 8080, protocol: 'http' }, { port: 9000, appPort: 9001 }],
    outbound: [{ name: 'orders', listen: 0, address: '127.0.0.1:8443', allowedIds: [self] }],
  }, '/') as AgentConfig;
  // Mostly well-formed documents with a few wrong values mixed in, so both paths are exercised.
  const value = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }));
  const often = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> => fc.oneof({ arbitrary: good, weight: 30 }, { arbitrary: value, weight: 1 });
  const ids = fc.array(fc.constantFrom('*', 'spiffe://example.org/ns/shop/sa/web', 'spiffe://example.org/ns/shop/*', 'example.org/*', '*web', 'spiffe://example.org/ns/x/sa/y', 'spiffe://'), { minLength: 1, maxLength: 2 });
  const peer = fc.record({
    spiffeIds: often(ids),
    namespaces: often(fc.array(fc.constantFrom('shop', 'other', '*'), { maxLength: 2 })),
    unauthenticated: fc.oneof({ arbitrary: fc.constant(undefined), weight: 10 }, { arbitrary: fc.boolean(), weight: 1 }),
    selector: often(fc.record({ matchExpressions: fc.array(fc.constantFrom('vuln.critical > 0', 'vuln.critical == 0', '!debug', 'k8s.namespace in (shop)', 'vuln.maxCvss < 7', 'build.verified == true', 'bad expression ('), { maxLength: 2 }) })),
    ipBlocks: often(fc.array(fc.constantFrom('10.0.0.0/8', '::1/128', '127.0.0.0/8', '192.168.0.0/16', '300.0.0.0/8'), { maxLength: 1 })),
  }, { requiredKeys: [] });
  const op = fc.record({
    ports: often(fc.array(fc.oneof(fc.constantFrom(8443, 9000, 8443, 9000, 1, 70_000), fc.constantFrom('8000-9000', '1-65535', '9-1')), { maxLength: 2 })),
    methods: often(fc.array(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', '*', 'get'), { maxLength: 2 })),
    paths: often(fc.array(fc.constantFrom('/public/*', '/{*}/x', '/a/{**}', '*.json', '/health', '/api/v1/*', '/', 'no-slash', '/a/{**}/{**}'), { maxLength: 2 })),
    hosts: often(fc.array(fc.constantFrom('orders', '*.example.org'), { maxLength: 1 })),
    headers: often(fc.record({ 'x-tenant': fc.array(fc.constantFrom('a', 'b*'), { maxLength: 1 }) })),
  }, { requiredKeys: [] });
  const rule = fc.record({ from: often(fc.array(peer, { maxLength: 2 })), to: often(fc.array(op, { maxLength: 2 })) }, { requiredKeys: [] });
  const egressRule = fc.record({ to: often(fc.array(peer, { maxLength: 2 })), operations: often(fc.array(op, { maxLength: 2 })) }, { requiredKeys: [] });
  const meta = often(fc.record({ name: fc.oneof({ arbitrary: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), weight: 30 }, { arbitrary: fc.string({ maxLength: 6 }), weight: 1 }) }));
  const subject = often(fc.constantFrom(undefined, { spiffeIds: [self] }, { selector: { matchAttributes: { 'k8s.namespace': 'shop' } } }));
  const access = fc.record({
    apiVersion: fc.constant('ward.dev/v1alpha1'), kind: fc.constant('AccessPolicy'), metadata: meta,
    spec: often(fc.record({
      subject, action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT', 'ALLOW', 'DENY'), mode: fc.constantFrom('enforce', 'dry-run', 'learn', 'enforce'),
      ingress: often(fc.array(rule, { maxLength: 3 })), egress: often(fc.array(egressRule, { maxLength: 2 })),
    }, { requiredKeys: [] })),
  });
  const mtls = fc.record({
    apiVersion: fc.constant('ward.dev/v1alpha1'), kind: fc.constant('MutualTLSPolicy'), metadata: meta,
    spec: often(fc.record({ subject, mtls: often(fc.record({ mode: fc.constantFrom('STRICT', 'PERMISSIVE', 'OFF') })) }, { requiredKeys: [] })),
  });
  const workload = fc.record({
    apiVersion: fc.constant('ward.dev/v1alpha1'), kind: fc.constant('Workload'), metadata: meta,
    spec: often(fc.record({ spiffeId: fc.constantFrom(self, 'spiffe://example.org/ns/shop/sa/web', 'spiffe://example.org/ns/shop/sa/legacy'), attributes: often(fc.record({ 'vuln.critical': fc.oneof(fc.integer({ min: -1, max: 5 }), fc.string({ maxLength: 3 })) })) })),
  });
  const doc = fc.oneof({ arbitrary: access, weight: 6 }, { arbitrary: mtls, weight: 1 }, { arbitrary: workload, weight: 2 }, { arbitrary: value, weight: 1 });
  let compiled = 0;
  fc.assert(fc.property(fc.array(doc, { maxLength: 3 }), (docs) => {
    const text = docs.map((d) => JSON.stringify(d) ?? 'null').join('\n---\n');
    try {
      const parsed = parsePolicyDir([{ file: 'fuzz.yaml', text }], 0);
      const authz = compileStaticPolicy(parsed, 'v', self, config);
      const d = authz.authorizeConnection({ direction: 'inbound', source: { spiffeId: 'spiffe://example.org/ns/shop/sa/web', authenticated: true, attributes: {} }, destination: self, port: 8443 });
      assert.equal(typeof d.allow, 'boolean');
      if (parsed.policies.length > 0) compiled += 1;
    } catch (error) {
      assert.ok(isWardError(error), String(error));
    }
  }), { numRuns: 1500 });
  assert.ok(compiled > 100, `only ${compiled} runs compiled a policy: the generator no longer reaches the engine`);
});
