// Policies scoped per agent (ADR 0076), over a real (in-memory SQLite) store and the real hub:
// each agent's `policies` part holds the policies whose subject selects a workload it serves
// (plus those every agent must enforce), and moves as entries, subjects and attributes change,
// over a live stream and on resumption. On both store dialects (PostgreSQL at 127.0.0.1:5432).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WatchMessage } from '../../../src/api/types.js';
import { ManualClock } from '../../../src/core/clock.js';
import { openStore, type Store } from '../../../src/store/index.js';
import { postgresHarness } from '../store/harness.js';
import type { CaPort } from '../../../src/server/ports.js';
import { RegistryView } from '../../../src/server/services/registry-view.js';
import { WatchHub, newCursor, type WatchSubscriber } from '../../../src/server/services/watch-hub.js';

const TD = 'example.org';
const A = `spiffe://${TD}/ward/agent/join_token/a`;
const B = `spiffe://${TD}/ward/agent/join_token/b`;
const ORDERS = `spiffe://${TD}/orders`;
const CATALOG = `spiffe://${TD}/catalog`;
const IMAGE_ORDERS = `sha256:${'1'.repeat(64)}`;
const caPort: CaPort = { trustDomain: TD, bundle: () => ['-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n'], issueSvid: () => assert.fail(), precheckCsr: () => assert.fail(), verifyClientSvid: () => assert.fail() };

type Req = { key: string; operator: string; values: string[] };
interface Subject { spiffeIds?: string[]; requirements?: Req[] }

/** A stored policy record as `ward apply` leaves it (kind, document, parsed model). */
function parsed(kind: 'AccessPolicy' | 'RuntimePolicy' | 'MutualTLSPolicy', name: string, subject: Subject, spec: Record<string, unknown>): Record<string, unknown> {
  const s = { selector: { requirements: subject.requirements ?? [] }, ...(subject.spiffeIds ? { spiffeIds: subject.spiffeIds } : {}) };
  const policy = kind === 'MutualTLSPolicy' ? { kind, name, mode: 'enforce', subject: s, ...spec } : { kind, name, mode: 'enforce', action: 'ALLOW', subject: s, ...spec };
  return { kind, document: { name }, policy };
}
const ingress = (name: string, subject: Subject, from = 'web') => parsed('AccessPolicy', name, subject, { ingress: [{ peers: [{ spiffeIds: [`${TD}/${from}`] }] }] });

async function put(store: Store, name: string, p: Record<string, unknown>): Promise<void> {
  await store.policies.put({ name, yaml: 'x', parsed: p });
}

type Dialect = 'sqlite' | 'postgres';

async function open(dialect: Dialect): Promise<{ store: Store; close: () => Promise<void> }> {
  if (dialect === 'postgres') {
    const h = await postgresHarness();
    return { store: h.store, close: () => h.cleanup() };
  }
  const store = await openStore(':memory:', { clock: new ManualClock('2026-03-01T00:00:00Z') });
  return { store, close: () => store.close() };
}

async function setup(dialect: Dialect) {
  const { store, close } = await open(dialect);
  await store.agents.upsert({ agentId: A, spiffeId: A, attestationType: 'join_token', selectors: ['join_token:host-name:vm-a'] });
  await store.agents.upsert({ agentId: B, spiffeId: B, attestationType: 'join_token', selectors: ['join_token:host-name:vm-b'] });
  await store.entries.create({ id: 'orders', spiffeId: ORDERS, parentId: `spiffe://${TD}/ward/server`, selectors: ['join_token:host-name:vm-a'], ttlSeconds: 60 });
  await store.entries.create({ id: 'catalog', spiffeId: CATALOG, parentId: `spiffe://${TD}/ward/server`, selectors: ['join_token:host-name:vm-b'], ttlSeconds: 60 });
  await store.workloads.upsert({ spiffeId: ORDERS, agentId: A, imageDigest: IMAGE_ORDERS });
  await store.workloads.upsert({ spiffeId: CATALOG, agentId: B, imageDigest: null });
  await put(store, 'orders-in', ingress('orders-in', { spiffeIds: [ORDERS] }));
  await put(store, 'catalog-in', ingress('catalog-in', { spiffeIds: [`${TD}/catalog`] }));
  await put(store, 'catalog-runtime', parsed('RuntimePolicy', 'catalog-runtime', { spiffeIds: [CATALOG] }, { processes: [{ paths: ['/usr/bin/*'] }] }));
  await put(store, 'mesh-mtls', parsed('MutualTLSPolicy', 'mesh-mtls', {}, { mtls: 'STRICT' }));
  await put(store, 'web-out', parsed('AccessPolicy', 'web-out', { spiffeIds: [`${TD}/web`] }, { egress: [{ peers: [{ spiffeIds: [`${TD}/orders`] }] }] }));
  await put(store, 'critical-deny', parsed('AccessPolicy', 'critical-deny', { requirements: [{ key: 'vuln.critical', operator: 'Gt', values: ['0'] }] }, { action: 'DENY', ingress: [{}] }));
  const view = new RegistryView(store, caPort, TD, new Set(['join_token']));
  await view.load();
  return { store, view, close };
}

function subscriber(agentId: string): WatchSubscriber & { got: WatchMessage[] } {
  const got: WatchMessage[] = [];
  return { agentId, cursor: newCursor(), got, send: (m) => (got.push(m), true), end: () => undefined };
}

/** Names in each `policies` part received (and drained), oldest first. */
function policyParts(sub: { got: WatchMessage[] }): string[][] {
  const out = sub.got.flatMap((m) => (m.type === 'policies' ? [m.policies.map((p) => p.name)] : []));
  sub.got.length = 0;
  return out;
}

/** The highest resource version received: what the agent resumes from. */
const sinceOf = (msgs: readonly WatchMessage[]): number => Math.max(...msgs.map((m) => m.resourceVersion));

for (const dialect of ['sqlite', 'postgres'] as const) {
  test(`${dialect}: two agents with different workloads get different policy sets; neither sees the other's`, async () => {
    const { store, view, close } = await setup(dialect);
    const hub = new WatchHub(view);
    const [a, b] = [subscriber(A), subscriber(B)];
    hub.subscribe(a, undefined);
    hub.subscribe(b, undefined);
    // A serves orders, B serves catalog. The egress policy of web goes to every agent (the
    // destination's agent checks the caller's egress); the mesh-wide mTLS mode selects both.
    assert.deepEqual(policyParts(a), [['mesh-mtls', 'orders-in', 'web-out']]);
    assert.deepEqual(policyParts(b), [['catalog-in', 'catalog-runtime', 'mesh-mtls', 'web-out']]);
    assert.deepEqual(view.policiesFor(A), ['mesh-mtls', 'orders-in', 'web-out']);
    // A change to B's policy reaches B only; A gets nothing at all.
    await put(store, 'catalog-in', ingress('catalog-in', { spiffeIds: [`${TD}/catalog`] }, 'ops'));
    await view.refresh();
    hub.flush();
    assert.deepEqual(a.got, [], 'A is not told about a policy of B\'s workload');
    assert.deepEqual(policyParts(b), [['catalog-in', 'catalog-runtime', 'mesh-mtls', 'web-out']]);
    // An ingress rule of catalog that names orders as a caller concerns A too: A's agent decides
    // orders' calls to catalog on it before any byte leaves (ADR 0070).
    await put(store, 'catalog-in', ingress('catalog-in', { spiffeIds: [CATALOG] }, 'orders'));
    await view.refresh();
    hub.flush();
    assert.deepEqual(policyParts(a), [['catalog-in', 'mesh-mtls', 'orders-in', 'web-out']]);
    assert.deepEqual(policyParts(b), [['catalog-in', 'catalog-runtime', 'mesh-mtls', 'web-out']]);
    await close();
  });

  test(`${dialect}: agents with the same set share one frozen part; a fleet-wide change builds it once`, async () => {
    const { store, view, close } = await setup(dialect);
    // C and D both serve the batch workload (same node selector): same set.
    const C = `spiffe://${TD}/ward/agent/join_token/c`;
    const D = `spiffe://${TD}/ward/agent/join_token/d`;
    for (const id of [C, D]) await store.agents.upsert({ agentId: id, spiffeId: id, attestationType: 'join_token', selectors: ['join_token:host-name:vm-c'] });
    await store.entries.create({ id: 'batch', spiffeId: `spiffe://${TD}/batch`, parentId: `spiffe://${TD}/ward/server`, selectors: ['join_token:host-name:vm-c'], ttlSeconds: 60 });
    await view.refresh();
    const hub = new WatchHub(view);
    const subs = [A, B, C, D].map(subscriber);
    for (const s of subs) hub.subscribe(s, undefined);
    const part = (s: { got: WatchMessage[] }) => s.got.find((m) => m.type === 'policies');
    const [a, b, c, d] = subs as [ReturnType<typeof subscriber>, ReturnType<typeof subscriber>, ReturnType<typeof subscriber>, ReturnType<typeof subscriber>];
    assert.ok(part(c) !== undefined && part(c) === part(d), 'same set, same object');
    assert.ok(Object.isFrozen(part(c)));
    for (const s of subs) s.got.length = 0;
    // The mesh-wide mTLS policy selects every workload: every agent's set changes at once.
    await put(store, 'mesh-mtls', parsed('MutualTLSPolicy', 'mesh-mtls', {}, { mtls: 'PERMISSIVE' }));
    await view.refresh();
    hub.flush();
    assert.ok(subs.every((s) => part(s) !== undefined));
    assert.ok(part(c) === part(d), 'the new set is one object too');
    assert.notEqual(part(a), part(b));
    assert.notEqual(part(a), part(c));
    await close();
  });

  test(`${dialect}: live stream: an entry, a subject change and attribute changes move policies in and out`, async () => {
    const { store, view, close } = await setup(dialect);
    const hub = new WatchHub(view);
    const [a, b] = [subscriber(A), subscriber(B)];
    hub.subscribe(a, undefined);
    hub.subscribe(b, undefined);
    policyParts(a);
    policyParts(b);
    const step = async (): Promise<void> => {
      await view.refresh();
      hub.flush();
    };

    // A policy for an identity no agent serves yet goes everywhere (its callers are the only
    // place it can be enforced); once an entry puts it on A, only A has it.
    await put(store, 'payments-in', ingress('payments-in', { spiffeIds: [`${TD}/payments`] }));
    await step();
    assert.deepEqual(policyParts(a), [['mesh-mtls', 'orders-in', 'payments-in', 'web-out']]);
    assert.deepEqual(policyParts(b), [['catalog-in', 'catalog-runtime', 'mesh-mtls', 'payments-in', 'web-out']]);
    await store.entries.create({ id: 'payments', spiffeId: `spiffe://${TD}/payments`, parentId: `spiffe://${TD}/ward/server`, selectors: ['join_token:host-name:vm-a'], ttlSeconds: 60 });
    await step();
    assert.deepEqual(policyParts(a), [], 'A already had it: nothing to send');
    assert.deepEqual(policyParts(b), [['catalog-in', 'catalog-runtime', 'mesh-mtls', 'web-out']], 'B drops it');

    // A wildcard subject nobody matches goes nowhere; a new entry it selects brings it to that agent.
    await put(store, 'inventory-in', ingress('inventory-in', { spiffeIds: [`${TD}/inventory*`] }));
    await step();
    assert.deepEqual([policyParts(a), policyParts(b)], [[], []]);
    await store.entries.create({ id: 'inventory', spiffeId: `spiffe://${TD}/inventory-eu`, parentId: B, selectors: ['ward:service:inventory'], ttlSeconds: 60 });
    await step();
    assert.deepEqual(policyParts(a), []);
    assert.deepEqual(policyParts(b), [['catalog-in', 'catalog-runtime', 'inventory-in', 'mesh-mtls', 'web-out']]);

    // The subject of catalog-in moves from catalog (B) to orders (A).
    await put(store, 'catalog-in', ingress('catalog-in', { spiffeIds: [ORDERS] }));
    await step();
    assert.deepEqual(policyParts(a), [['catalog-in', 'mesh-mtls', 'orders-in', 'payments-in', 'web-out']]);
    assert.deepEqual(policyParts(b), [['catalog-runtime', 'inventory-in', 'mesh-mtls', 'web-out']]);

    // A scan marks orders critical: the DENY policy selecting critical workloads reaches A, after
    // the attributes that make it apply; a clean rescan takes it away again. B hears of neither.
    await store.images.putScan({ imageDigest: IMAGE_ORDERS, scanner: 'trivy', attributes: { 'vuln.critical': { value: 2, source: 'scan:trivy', observedAt: 1 } } });
    await step();
    assert.deepEqual(a.got.map((m) => m.type), ['policies', 'attributes']);
    assert.deepEqual(policyParts(a), [['catalog-in', 'critical-deny', 'mesh-mtls', 'orders-in', 'payments-in', 'web-out']]);
    assert.deepEqual(b.got, []);
    await store.images.putScan({ imageDigest: IMAGE_ORDERS, scanner: 'trivy', attributes: { 'vuln.critical': { value: 0, source: 'scan:trivy', observedAt: 2 } } });
    await step();
    assert.deepEqual(policyParts(a), [['catalog-in', 'mesh-mtls', 'orders-in', 'payments-in', 'web-out']]);

    // Removing the entry takes its workload's policies away from B.
    await store.entries.delete('inventory');
    await step();
    assert.deepEqual(policyParts(b), [['catalog-runtime', 'mesh-mtls', 'web-out']]);
    assert.deepEqual(a.got, []);
    await close();
  });

  test(`${dialect}: resumption: an unchanged set sends no policies part, a changed one the new part`, async () => {
    const { store, view, close } = await setup(dialect);
    const first = subscriber(A);
    new WatchHub(view).subscribe(first, undefined);
    const since = sinceOf(first.got);

    // While A is away, only B's policies change: resuming, A gets no policies part.
    await put(store, 'catalog-in', ingress('catalog-in', { spiffeIds: [`${TD}/catalog`] }, 'ops'));
    await put(store, 'catalog-runtime', parsed('RuntimePolicy', 'catalog-runtime', { spiffeIds: [CATALOG] }, { files: [{ paths: ['/etc/**'], access: ['write'] }] }));
    await view.refresh();
    const again = subscriber(A);
    new WatchHub(view).subscribe(again, since);
    assert.deepEqual(again.got.filter((m) => m.type === 'policies'), [], 'nothing of its own changed');

    // A policy of its own changes while it is away: the new part.
    const since2 = Math.max(since, sinceOf(again.got));
    await put(store, 'orders-in', ingress('orders-in', { spiffeIds: [ORDERS] }, 'catalog'));
    await view.refresh();
    const third = subscriber(A);
    new WatchHub(view).subscribe(third, since2);
    const part = third.got.find((m) => m.type === 'policies');
    assert.ok(part?.type === 'policies');
    assert.deepEqual(part.policies.map((p) => p.name), ['mesh-mtls', 'orders-in', 'web-out']);
    assert.ok(part.resourceVersion > since2);

    // Its set changes by attributes alone while it is away: resumed, it gets the new part too.
    const since3 = sinceOf(third.got);
    await store.images.putScan({ imageDigest: IMAGE_ORDERS, scanner: 'trivy', attributes: { 'vuln.critical': { value: 1, source: 'scan:trivy', observedAt: 1 } } });
    await view.refresh();
    const fourth = subscriber(A);
    new WatchHub(view).subscribe(fourth, since3);
    assert.deepEqual(policyParts(fourth), [['critical-deny', 'mesh-mtls', 'orders-in', 'web-out']]);

    // A second view on the same store (another replica, or a restart) resends from its load version.
    const replica = new RegistryView(store, caPort, TD, new Set(['join_token']));
    await replica.load();
    const other = subscriber(A);
    new WatchHub(replica).subscribe(other, since3);
    assert.deepEqual(policyParts(other), [['critical-deny', 'mesh-mtls', 'orders-in', 'web-out']]);
    await close();
  });

  test(`${dialect}: a workload registered through an agent is served by it; a revoked agent serves nothing`, async () => {
    const { store, view, close } = await setup(dialect);
    const hub = new WatchHub(view);
    const a = subscriber(A);
    hub.subscribe(a, undefined);
    policyParts(a);
    // A workload A registered without (or after losing) an entry: A may still serve it until its
    // SVID expires, so the policies selecting it go to A.
    await store.workloads.upsert({ spiffeId: `spiffe://${TD}/batch`, agentId: A, imageDigest: null });
    await put(store, 'batch-in', ingress('batch-in', { spiffeIds: [`${TD}/batch`] }));
    await view.refresh();
    hub.flush();
    assert.deepEqual(policyParts(a), [['batch-in', 'mesh-mtls', 'orders-in', 'web-out']]);
    assert.ok(!view.policiesFor(B).includes('batch-in'));
    // B is revoked: catalog is served by no agent any more, so its ingress policy goes to every
    // agent (its callers are the only place left to enforce it); the runtime policy goes nowhere.
    await store.agents.revoke(B, 'test');
    await view.refresh();
    hub.flush();
    assert.deepEqual(policyParts(a), [['batch-in', 'catalog-in', 'mesh-mtls', 'orders-in', 'web-out']]);
    await close();
  });

  test(`${dialect}: a policy the server cannot read goes to every agent (fail towards sending)`, async () => {
    const { store, view, close } = await setup(dialect);
    await put(store, 'odd', { kind: 'AccessPolicy', document: {}, policy: { kind: 'AccessPolicy', subject: { selector: 'not a selector' } } });
    await put(store, 'unknown-kind', { kind: 'Future', document: {}, policy: { kind: 'FuturePolicy' } });
    await view.refresh();
    assert.ok(view.policiesFor(A).includes('odd') && view.policiesFor(B).includes('odd'));
    assert.ok(view.policiesFor(A).includes('unknown-kind') && view.policiesFor(B).includes('unknown-kind'));
    await close();
  });
}
