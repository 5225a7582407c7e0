// Renewal schedule (half-life with jitter, bounded retries), the watch-state bookkeeping (a bad
// policy set is refused and the last good one stays), the OCSF mapping of proxy records, and a
// property test: arbitrary watch messages never throw anything but ERR_CONTROL_STREAM and a
// refused message never changes the state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../../../src/core/clock.js';
import { decodeBatchValue } from '../../../../src/events/codec.js';
import { RENEW_JITTER_FRACTION, renewAt, retryDelay } from '../../../../src/agent/control/rotation.js';
import { ControlState } from '../../../../src/agent/control/state.js';
import { ControlError } from '../../../../src/agent/control/errors.js';
import { toWardEvent } from '../../../../src/agent/control/event-sink.js';
import type { WatchMessage } from '../../../../src/api/types.js';

const HOUR = 3_600_000;

test('renewAt: between 40% and 50% of the lifetime, spread by the random source', () => {
  assert.equal(renewAt(0, HOUR, () => 0), HOUR / 2);
  assert.equal(renewAt(0, HOUR, () => 1), HOUR / 2 - RENEW_JITTER_FRACTION * HOUR);
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1000, max: 30 * 24 * HOUR }), fc.double({ min: 0, max: 1, noNaN: true }), (nb, life, r) => {
    const at = renewAt(nb, nb + life, () => r);
    return at <= nb + life / 2 && at >= nb + life * (0.5 - RENEW_JITTER_FRACTION) - 1;
  }), { numRuns: 500 });
  const spread = new Set(Array.from({ length: 50 }, (_, i) => renewAt(0, HOUR, () => i / 50)));
  assert.equal(spread.size, 50, 'a fleet renewing from the same issue time spreads out');
});

test('retryDelay: doubles from 1 s and stops at the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 10, 100].map((a) => retryDelay(a, 5000)), [1000, 2000, 4000, 5000, 5000, 5000]);
});

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const policy = (name: string, spec: unknown) => ({ kind: 'AccessPolicy', name, version: 1, policy: null, document: { apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name }, spec } });
const good = policy('payments-api', { subject: { spiffeIds: ['spiffe://td/payments'] }, action: 'ALLOW', ingress: [{ from: [{ spiffeIds: ['spiffe://td/orders'] }] }] });

test('state: synced after bundle, entries, policies and attributes; a bad policy set keeps the last good one', () => {
  const s = new ControlState(() => ({}));
  assert.equal(s.synced, false);
  s.apply({ type: 'bundle', resourceVersion: 1, bundle: [CERT] });
  s.apply({ type: 'entries', resourceVersion: 2, entries: [] });
  s.apply({ type: 'attributes', resourceVersion: 3, reset: true, workloads: [{ spiffeId: 'spiffe://td/orders', attributes: {} }], removed: [] });
  assert.equal(s.synced, false);
  const ch = s.apply({ type: 'policies', resourceVersion: 4, policies: [good] });
  assert.ok(ch.authorizer);
  assert.equal(s.synced, true);
  assert.equal(s.resourceVersion, 4);
  const authz = s.authorizer;
  assert.equal(authz?.authorizeConnection({ direction: 'inbound', source: { spiffeId: 'spiffe://td/orders', authenticated: true, attributes: {} }, destination: 'spiffe://td/payments', port: 1 }).allow, true);
  assert.throws(() => s.apply({ type: 'policies', resourceVersion: 5, policies: [good, policy('broken', { action: 'MAYBE' })] }), (e: unknown) => e instanceof ControlError && e.code === 'ERR_CONTROL_STREAM');
  assert.equal(s.authorizer, authz);
  assert.equal(s.resourceVersion, 4, 'a refused message does not advance the resume point');
  assert.throws(() => s.apply({ type: 'bundle', resourceVersion: 6, bundle: [] }), ControlError);
  assert.deepEqual(s.bundle, [CERT]);
});

test('state: arbitrary messages throw only ERR_CONTROL_STREAM, and a refusal changes nothing', () => {
  const json = fc.jsonValue({ maxDepth: 4 });
  const msg = fc.oneof(
    fc.record({ type: fc.constant('policies'), resourceVersion: fc.nat(), policies: fc.array(fc.record({ kind: fc.constant('AccessPolicy'), name: fc.string(), version: fc.nat(), policy: json, document: json }), { maxLength: 3 }) }),
    fc.record({ type: fc.constant('bundle'), resourceVersion: fc.nat(), bundle: fc.array(fc.oneof(fc.string(), fc.constant(CERT)), { maxLength: 3 }) }),
    fc.record({ type: fc.constant('revocations'), resourceVersion: fc.nat(), revocations: fc.array(fc.record({ serial: fc.stringMatching(/^[0-9a-f]{1,40}$/), spiffeId: fc.string(), expiresAt: fc.nat() }), { maxLength: 3 }) }),
  );
  fc.assert(fc.property(msg, (m) => {
    const s = new ControlState(() => ({}));
    s.apply({ type: 'policies', resourceVersion: 1, policies: [good] });
    const before = { authz: s.authorizer, rv: s.resourceVersion, bundle: s.bundle };
    try {
      s.apply(m as unknown as WatchMessage);
    } catch (e) {
      assert.ok(e instanceof ControlError && e.code === 'ERR_CONTROL_STREAM', String(e));
      assert.deepEqual({ authz: s.authorizer, rv: s.resourceVersion, bundle: s.bundle }, before);
    }
  }), { numRuns: 300 });
});

test('events: proxy records become valid OCSF events the server codec accepts', () => {
  const clock = new ManualClock(1_795_000_000_000);
  const me = 'spiffe://td/payments';
  const events = [
    toWardEvent({ class: 'network_activity', time: 1, direction: 'inbound', source: 'spiffe://td/orders', destination: me, port: 8443, verdict: 'allowed', policy: 'payments-api/ingress[0]', bytesIn: 1, bytesOut: 2, durationMs: 3.4 }, me, clock),
    toWardEvent({ class: 'network_activity', time: 2, direction: 'outbound', source: me, destination: 'ledger', port: 15001, verdict: 'denied', policy: 'default-deny', reason: 'ERR_AGENT_CONNECTION_DENIED', bytesIn: 0, bytesOut: 0, durationMs: 0 }, me, clock),
    toWardEvent({ class: 'network_activity', time: 3, direction: 'inbound', source: 'unauthenticated', destination: me, port: 8443, verdict: 'rejected', policy: 'none', reason: 'ERR_AGENT_PEER_UNVERIFIED', bytesIn: 0, bytesOut: 0, durationMs: 0 }, me, clock),
    toWardEvent({ class: 'http_activity', time: 4, source: 'spiffe://td/orders', destination: me, port: 8443, method: 'POST', path: '/v1/admin/refund-all', status: 403, verdict: 'denied', policy: 'payments-no-admin/ingress[0]', reason: 'ERR_AGENT_REQUEST_DENIED', latencyMs: 0.2 }, me, clock),
  ];
  const batch = decodeBatchValue({ agentId: 'spiffe://td/ward/agent/x', batch: events.map((event, i) => ({ seq: i + 1, event })) });
  assert.equal(batch.batch.length, 4);
  assert.equal(events[1]!.class_uid, 4001);
  assert.equal((events[3] as { decision?: { action: string } }).decision?.action, 'deny');
  assert.equal((events[3] as { type_uid: number }).type_uid, 400206, 'POST activity');
  assert.equal((events[3] as { http_request: { url: { path_template?: string } } }).http_request.url.path_template, '/v1/admin/refund-all');
  const withId = toWardEvent({ class: 'http_activity', time: 5, source: 'spiffe://td/orders', destination: me, port: 8443, method: 'GET', path: `/v1/charges/8123/${'1'.repeat(3000)}`, status: 200, verdict: 'allowed', policy: 'payments-api/ingress[0]', latencyMs: 0.1 }, me, clock);
  const url = (withId as { http_request: { url: { path: string; path_template?: string } } }).http_request.url;
  assert.ok(url.path_template?.startsWith('/v1/charges/{id}/{id}'));
  assert.equal(decodeBatchValue({ agentId: 'spiffe://td/ward/agent/x', batch: [{ seq: 1, event: withId }] }).batch.length, 1, 'a long templated path stays within the codec bounds');
});
