// The registry view and the watch hub over a real (in-memory SQLite) store: what a new, a
// resuming and a connected agent receive, and that unchanged parts are not resent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WatchMessage } from '../../../src/api/types.js';
import { ManualClock } from '../../../src/core/clock.js';
import { openStore } from '../../../src/store/index.js';
import type { CaPort } from '../../../src/server/ports.js';
import { RegistryView } from '../../../src/server/services/registry-view.js';
import { WatchHub, newCursor, type WatchSubscriber } from '../../../src/server/services/watch-hub.js';

const TD = 'example.org';
const AGENT = `spiffe://${TD}/ward/agent/join_token/a1`;
const caPort: CaPort = { trustDomain: TD, bundle: () => ['-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n'], issueSvid: () => assert.fail(), precheckCsr: () => assert.fail(), verifyClientSvid: () => assert.fail() };

async function setup() {
  const clock = new ManualClock('2026-03-01T00:00:00Z');
  const store = await openStore(':memory:', { clock });
  await store.agents.upsert({ agentId: AGENT, spiffeId: AGENT, attestationType: 'join_token', selectors: ['join_token:host-name:vm-1'] });
  await store.entries.create({ id: 'orders', spiffeId: `spiffe://${TD}/orders`, parentId: `spiffe://${TD}/ward/server`, selectors: ['join_token:host-name:vm-1'], ttlSeconds: 60 });
  await store.entries.create({ id: 'other', spiffeId: `spiffe://${TD}/other`, parentId: `spiffe://${TD}/ward/server`, selectors: ['join_token:host-name:vm-2'], ttlSeconds: 60 });
  await store.workloads.upsert({ spiffeId: `spiffe://${TD}/orders`, agentId: AGENT, imageDigest: `sha256:${'1'.repeat(64)}` });
  const view = new RegistryView(store, caPort, TD, new Set(['join_token']));
  await view.load();
  return { clock, store, view };
}

/** The attribute table an agent holds after applying `msgs` in order (as the agent does). */
function tableOf(msgs: readonly WatchMessage[]): string[] {
  const t = new Set<string>();
  for (const m of msgs) {
    if (m.type !== 'attributes') continue;
    if (m.reset) t.clear();
    for (const w of m.workloads) t.add(w.spiffeId);
    for (const id of m.removed) t.delete(id);
  }
  return [...t].sort();
}

function subscriber(agentId: string): WatchSubscriber & { got: WatchMessage[] } {
  const got: WatchMessage[] = [];
  return { agentId, cursor: newCursor(), got, send: (m) => (got.push(m), true), end: () => undefined };
}

test('a new agent gets every part once, in version order, and only its own entries', async () => {
  const { store, view } = await setup();
  const hub = new WatchHub(view);
  const sub = subscriber(AGENT);
  hub.subscribe(sub, undefined);
  assert.deepEqual(sub.got.map((m) => m.type).sort(), ['attributes', 'attributes', 'bundle', 'entries', 'policies', 'revocations']);
  const versions = sub.got.map((m) => m.resourceVersion);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
  const entries = sub.got.find((m) => m.type === 'entries');
  assert.deepEqual(entries?.type === 'entries' ? entries.entries.map((e) => e.id) : [], ['orders']);
  const attrs = sub.got.find((m) => m.type === 'attributes');
  assert.ok(attrs?.type === 'attributes' && attrs.reset, 'the table starts with a reset');
  assert.deepEqual(tableOf(sub.got), [`spiffe://${TD}/orders`]);
  hub.flush();
  assert.equal(sub.got.length, 6, 'nothing changed: nothing resent');
  assert.equal(new WatchHub(view).connections, 0);
  await store.close();
});

test('a policy change sends only the policies part; an image scan sends an attribute delta', async () => {
  const { store, view } = await setup();
  const hub = new WatchHub(view);
  const sub = subscriber(AGENT);
  hub.subscribe(sub, undefined);
  sub.got.length = 0;
  await store.policies.put({ name: 'p1', yaml: 'x', parsed: { kind: 'AccessPolicy', document: { a: 1 }, policy: {} } });
  await view.refresh();
  hub.flush();
  assert.deepEqual(sub.got.map((m) => m.type), ['policies']);
  sub.got.length = 0;
  await store.images.putScan({ imageDigest: `sha256:${'1'.repeat(64)}`, scanner: 'trivy', attributes: { 'vuln.critical': { value: 3, source: 'scan:trivy', observedAt: 1 } } });
  await view.refresh();
  hub.flush();
  assert.equal(sub.got.length, 1);
  const delta = sub.got[0]!;
  assert.ok(delta.type === 'attributes' && !delta.reset);
  assert.equal(delta.type === 'attributes' ? delta.workloads[0]?.attributes['vuln.critical']?.value : undefined, 3);
  await store.close();
});

test('resuming after version V: whole parts newer than V; the attribute table it needs, as a reset', async () => {
  const { store, view } = await setup();
  const since = view.version;
  await store.policies.put({ name: 'p1', yaml: 'x', parsed: { kind: 'AccessPolicy', document: {}, policy: null } });
  await store.workloads.upsert({ spiffeId: `spiffe://${TD}/new`, agentId: AGENT, imageDigest: null });
  await view.refresh();
  const sub = subscriber(AGENT);
  new WatchHub(view).subscribe(sub, since);
  assert.deepEqual(sub.got.map((m) => m.type).sort(), ['attributes', 'attributes', 'policies']);
  const attrs = sub.got.find((m) => m.type === 'attributes');
  assert.ok(attrs?.type === 'attributes' && attrs.reset);
  assert.deepEqual(tableOf(sub.got), [`spiffe://${TD}/orders`], 'only what it needs: its own workload');
  await store.close();
});

test('peer attributes go to an agent only when its policies judge that peer by attributes', async () => {
  const { store, view } = await setup();
  await store.workloads.upsert({ spiffeId: `spiffe://${TD}/payments`, agentId: AGENT, imageDigest: `sha256:${'2'.repeat(64)}` });
  await store.workloads.upsert({ spiffeId: `spiffe://${TD}/catalog`, agentId: AGENT, imageDigest: null });
  await view.refresh();
  const hub = new WatchHub(view);
  const sub = subscriber(AGENT);
  hub.subscribe(sub, undefined);
  const seen: WatchMessage[] = [];
  const table = (): string[] => {
    seen.push(...sub.got.splice(0));
    return tableOf(seen);
  };
  assert.deepEqual(table(), [`spiffe://${TD}/orders`]);
  const access = (name: string, peer: Record<string, unknown>): Record<string, unknown> => ({
    kind: 'AccessPolicy', document: {}, policy: { kind: 'AccessPolicy', name, mode: 'enforce', action: 'ALLOW', subject: { selector: { requirements: [] }, spiffeIds: [`${TD}/orders`] }, egress: [{ peers: [peer] }] },
  });
  // By SPIFFE ID only: no attributes needed.
  await store.policies.put({ name: 'by-id', yaml: 'x', parsed: access('by-id', { spiffeIds: [`${TD}/catalog`] }) });
  await view.refresh();
  hub.flush();
  assert.deepEqual(table(), [`spiffe://${TD}/orders`]);
  // By a selector on a named peer: that peer's attributes, reset so the agent has them now.
  table();
  await store.policies.put({ name: 'by-selector', yaml: 'x', parsed: access('by-selector', { spiffeIds: [`${TD}/pay*`], selector: { requirements: [{ key: 'vuln.critical', operator: 'Equals', values: ['0'] }] } }) });
  await view.refresh();
  hub.flush();
  // The peer attributes come before the policy that needs them.
  assert.deepEqual(sub.got.map((m) => (m.type === 'attributes' ? `attributes:${m.reset ? 'reset' : 'upsert'}` : m.type)), ['attributes:reset', 'attributes:upsert', 'policies']);
  assert.deepEqual(table(), [`spiffe://${TD}/orders`, `spiffe://${TD}/payments`]);
  // A scan of an image nobody needs sends nothing; one of a needed peer sends a delta.
  table();
  await store.images.putScan({ imageDigest: `sha256:${'9'.repeat(64)}`, scanner: 'trivy', attributes: {} });
  await store.images.putScan({ imageDigest: `sha256:${'2'.repeat(64)}`, scanner: 'trivy', attributes: { 'vuln.critical': { value: 1, source: 'scan:trivy', observedAt: 1 } } });
  await view.refresh();
  hub.flush();
  assert.deepEqual(sub.got.map((m) => m.type === 'attributes' ? [m.reset, m.workloads.map((w) => w.spiffeId)] : m.type), [[false, [`spiffe://${TD}/payments`]]]);
  table();
  // A peer judged by namespace with no SPIFFE ID could be anyone: every workload.
  await store.policies.put({ name: 'by-ns', yaml: 'x', parsed: access('by-ns', { namespaces: ['shop'] }) });
  await view.refresh();
  hub.flush();
  assert.deepEqual(table(), [`spiffe://${TD}/catalog`, `spiffe://${TD}/orders`, `spiffe://${TD}/payments`]);
  await store.close();
});

test('a revoked agent gets nothing and its streams are ended; others get the revocation', async () => {
  const { store, view } = await setup();
  const other = `spiffe://${TD}/ward/agent/join_token/b2`;
  await store.agents.upsert({ agentId: other, spiffeId: other, attestationType: 'join_token', selectors: [] });
  await store.agents.recordSvid({ serial: 'abcd', agentId: other, spiffeId: other, expiresAt: Date.parse('2026-03-02T00:00:00Z') });
  await view.refresh();
  const hub = new WatchHub(view);
  const a = subscriber(AGENT);
  let ended = false;
  const b = { ...subscriber(other), end: () => void (ended = true) };
  hub.subscribe(a, undefined);
  hub.subscribe(b, undefined);
  a.got.length = 0;
  await store.agents.revoke(other, 'test');
  await view.refresh();
  hub.flush();
  assert.ok(ended);
  assert.equal(hub.connections, 1);
  const rev = a.got.find((m) => m.type === 'revocations');
  assert.deepEqual(rev?.type === 'revocations' ? rev.revocations.map((r) => r.serial) : [], ['abcd']);
  assert.ok(view.isSerialRevoked('ABCD'));
  const late = subscriber(other);
  hub.subscribe(late, undefined);
  assert.equal(late.got.length, 0);
  await store.close();
});
