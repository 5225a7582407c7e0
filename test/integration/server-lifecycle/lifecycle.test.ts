// The control plane end to end, on both stores: a real server, a scripted agent over mutual TLS,
// SVIDs checked by OpenSSL, the watch stream delivering a policy apply, an image scan raising
// vuln.critical and a revocation, and refused input leaving nothing but an audit record.
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { ServerReplyError } from '../../../src/api/errors.js';
import type { WatchMessage } from '../../../src/api/types.js';
import { createEvent } from '../../../src/events/codec.js';
import { systemClock } from '../../../src/core/clock.js';
import { WardClient } from '../../../src/api/client.js';
import { ScriptedAgent, TRUST_DOMAIN, dsseEnvelope, opensslUriSan, opensslVerify, startTestServer } from './harness.js';
import { generateKeyPairSync } from 'node:crypto';

const ORDERS = `spiffe://${TRUST_DOMAIN}/shop/orders`;
const PAYMENTS = `spiffe://${TRUST_DOMAIN}/shop/payments`;
// The image of test/fixtures/scans/trivy-orders.json (a real Trivy SchemaVersion 2 report).
const DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
const TRIVY = readFileSync('test/fixtures/scans/trivy-orders.json', 'utf8');
const STATEMENT = JSON.parse(readFileSync('test/fixtures/provenance/slsa-v1-github-container.statement.json', 'utf8')) as unknown;
const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const entry = (name: string, spiffeId: string, hostName: string) => ({
  apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name },
  spec: { spiffeId, parentId: '*', nodeSelectors: [`join_token:host-name:${hostName}`], ttl: '1h' },
});

const policy = (critical: number) => ({
  apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'payments-ingress' },
  spec: {
    subject: { spiffeIds: [PAYMENTS] }, action: 'ALLOW',
    ingress: [{ from: [{ spiffeIds: [ORDERS], selector: { matchExpressions: [`vuln.critical == ${critical}`] } }], to: [{ ports: [8443], methods: ['POST'], paths: ['/v1/charges'] }] }],
  },
});

async function code(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ServerReplyError) return { status: e.status, code: e.code };
    throw e;
  }
  assert.fail('expected the server to refuse');
}

const isType = <T extends WatchMessage['type']>(type: T) => (m: WatchMessage): m is Extract<WatchMessage, { type: T }> => m.type === type;

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`server lifecycle on ${kind}: attest, SVIDs, watch, scan-driven change, revocation, refusals audited`, { timeout: 60_000 }, async (t) => {
    const ts = await startTestServer(kind, { provenance: { keys: [{ keyid: 'release', publicKey: signing.publicKey.export({ type: 'spki', format: 'pem' }).toString() }] } });
    const agents: ScriptedAgent[] = [];
    t.after(async () => {
      for (const a of agents) a.close();
      await ts.cleanup();
    });
    const { server, admin } = ts;

    // A join token bound to facts the admin vouches for: host name and the image it runs.
    const jt = await admin.createJoinToken({ attributes: { 'host.name': 'vm-orders', 'image.digest': DIGEST } });
    const a = new ScriptedAgent(server);
    agents.push(a);
    const attested = await a.attest(jt.token);
    assert.match(attested.agentId, /^spiffe:\/\/ward\.test\/ward\/agent\/join_token\/[0-9a-f]{32}$/);
    assert.match(opensslVerify(ts.dir, attested.bundle, attested.svid.certChain), /OK/);
    assert.equal(opensslUriSan(ts.dir, attested.svid.certChain[0]!), attested.agentId);

    // A malformed CSR is refused before the token is looked at (the token stays usable);
    // replaying a used join token: refused, audited, no second agent.
    const jtSpare = await admin.createJoinToken({});
    const boot = new ScriptedAgent(server).bootstrapClient();
    assert.deepEqual(await code(boot.attest({ attestor: 'join_token', evidence: { token: jtSpare.token }, csr: '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n' })), { status: 400, code: 'ERR_CSR_MALFORMED' });
    boot.close();
    const spare = new ScriptedAgent(server);
    agents.push(spare);
    await spare.attest(jtSpare.token);
    const b0 = new ScriptedAgent(server);
    assert.deepEqual(await code(b0.attest(jt.token)), { status: 401, code: 'ERR_ATTEST_REPLAYED' });
    assert.equal((await admin.listAgents()).items.length, 2);

    // Entries for this node; the agent's watch shows its entries.
    const applied = await admin.apply([entry('orders', ORDERS, 'vm-orders'), entry('payments', PAYMENTS, 'vm-payments')]);
    assert.deepEqual(applied.results.map((r) => r.action), ['created', 'created']);
    const watch = a.watch();
    await watch.opened;
    const entries = await watch.waitFor(isType('entries'));
    assert.deepEqual(entries.msg.entries.map((e) => e.spiffeId), [ORDERS], 'only the entry whose node selectors this agent holds');

    // Workload SVID for its entry: verified by OpenSSL; another identity: refused and audited.
    const w = await a.workloadSvid(ORDERS);
    assert.match(opensslVerify(ts.dir, attested.bundle, w.svid.certChain), /OK/);
    assert.equal(opensslUriSan(ts.dir, w.svid.certChain[0]!), ORDERS);
    assert.deepEqual(await code(a.workloadSvid(PAYMENTS)), { status: 403, code: 'ERR_SERVER_CSR_IDENTITY' });
    const workloads = (await admin.listWorkloads()).items;
    assert.deepEqual(workloads.map((x) => x.spiffeId), [ORDERS]);
    assert.equal(workloads[0]!.imageDigest, DIGEST);
    assert.equal(workloads[0]!.attributes['host.name']?.value, 'vm-orders');
    assert.equal(workloads[0]!.attributes['host.name']?.source, 'attestor:join_token');

    // A policy apply reaches the connected agent within a second.
    let from = watch.messages.length;
    const t0 = performance.now();
    await admin.apply([policy(0)]);
    const got = await watch.waitFor(isType('policies'), 5000, from);
    assert.deepEqual(got.msg.policies.map((p) => p.name), ['payments-ingress']);
    assert.ok(got.at - t0 < 1000, `policy reached the agent after ${Math.round(got.at - t0)}ms`);

    // A Trivy report for the image raises vuln.critical on every workload of that image, and the
    // agent sees the attribute change within a second. A malformed report stores nothing.
    assert.equal((await code(admin.importScan('{"SchemaVersion": 2, "Results": "nope"}'))).status, 400);
    assert.equal((await admin.getWorkload(ORDERS)).attributes['vuln.critical'], undefined);
    from = watch.messages.length;
    const t1 = performance.now();
    const imported = await admin.importScan(TRIVY);
    assert.deepEqual(imported, { format: 'trivy', imageDigests: [DIGEST], workloadsUpdated: [ORDERS] });
    const attrs = await watch.waitFor((m): m is Extract<WatchMessage, { type: 'attributes' }> => m.type === 'attributes' && m.workloads.some((x) => x.spiffeId === ORDERS && x.attributes['vuln.critical']?.value === 1), 5000, from);
    assert.ok(attrs.at - t1 < 1000, `scan reached the agent after ${Math.round(attrs.at - t1)}ms`);
    assert.equal(attrs.msg.reset, false, 'a delta, not the whole table');
    const scanned = (await admin.getWorkload(ORDERS)).attributes;
    assert.equal(scanned['vuln.critical']?.source, 'scan:trivy');
    assert.equal(scanned['vuln.maxCvss']?.value, 9.8);
    assert.equal(scanned['host.name']?.source, 'attestor:join_token', 'attestation facts stay');

    // SLSA provenance signed by the configured key sets build.* on the image's workloads; a
    // tampered envelope is refused and stores nothing.
    const good = dsseEnvelope(STATEMENT, signing.privateKey);
    const tampered = { ...good, payload: Buffer.from(JSON.stringify({ ...(STATEMENT as object), predicateType: 'x' })).toString('base64') };
    assert.deepEqual(await code(admin.importProvenance(tampered)), { status: 400, code: 'ERR_PROVENANCE_SIGNATURE' });
    assert.equal((await admin.getWorkload(ORDERS)).attributes['build.verified'], undefined);
    assert.deepEqual(await admin.importProvenance(good), { imageDigests: [DIGEST], verified: true, workloadsUpdated: [ORDERS] });
    const built = (await admin.getWorkload(ORDERS)).attributes;
    assert.equal(built['build.verified']?.value, true);
    assert.equal(built['build.verified']?.source, 'provenance:slsa');
    assert.match(String(built['build.repo']?.value), /acme\/orders/);

    // Agent SVID renewal: new serial, the new certificate authenticates.
    const before = a.svid!.certChain[0];
    const renewed = await a.renew();
    assert.notEqual(renewed.certChain[0], before);
    assert.match(opensslVerify(ts.dir, attested.bundle, renewed.certChain), /OK/);
    await a.workloadSvid(ORDERS);

    // A second agent, revoked: the first agent's stream carries the revocation; the revoked one is shut out.
    const jt2 = await admin.createJoinToken({ attributes: { 'host.name': 'vm-payments' } });
    const b = new ScriptedAgent(server);
    agents.push(b);
    await b.attest(jt2.token);
    await b.workloadSvid(PAYMENTS);
    from = watch.messages.length;
    await admin.revokeAgent(b.agentId);
    const rev = await watch.waitFor(isType('revocations'), 5000, from);
    assert.ok(rev.msg.revocations.some((r) => r.spiffeId === PAYMENTS), 'the revoked agent\'s workload SVID is listed');
    assert.ok(rev.msg.revocations.some((r) => r.spiffeId === b.agentId), 'and its own SVID');
    assert.deepEqual(await code(b.workloadSvid(PAYMENTS)), { status: 401, code: 'ERR_SERVER_AGENT_UNKNOWN' });

    // Events: a retried batch is stored once.
    const ev = createEvent({ class_uid: 4001, activity_id: 6, severity_id: 1, workload: { spiffe_id: ORDERS }, src_endpoint: { ip: '10.0.0.1' }, dst_endpoint: { ip: '10.0.0.2', port: 8443 }, connection_info: { protocol_name: 'tcp', direction_id: 2 } } as never, systemClock);
    const batch = { agentId: a.agentId, batch: [{ seq: 1, event: ev }, { seq: 2, event: ev }] };
    assert.deepEqual(await a.client().sendEvents(batch), { accepted: 2, duplicates: 0, ackedSequence: 2 });
    assert.deepEqual(await a.client().sendEvents(batch), { accepted: 0, duplicates: 2, ackedSequence: 2 });
    assert.deepEqual(await code(a.client().sendEvents({ agentId: b.agentId, batch: [{ seq: 3, event: ev }] })), { status: 403, code: 'ERR_SERVER_FORBIDDEN' });

    // Resume: reconnecting from the last version sends only what changed meanwhile.
    const last = await watch.stop();
    assert.ok(last !== undefined && /^\d+$/.test(last));
    await admin.apply([policy(1)]);
    const resumed = a.watch(last);
    const again = await resumed.waitFor(isType('policies'));
    assert.match(JSON.stringify(again.msg.policies[0]!.document), /vuln\.critical == 1/);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!resumed.messages.some((m) => m.msg.type === 'bundle'), 'the unchanged bundle is not resent');
    await resumed.stop();

    // Refusals: forged token, viewer writing, malformed policy, oversized body: 4xx, nothing stored.
    const forged = new WardClient({ baseUrl: server.adminUrl, token: `ward_adm_${'A'.repeat(43)}` });
    assert.deepEqual(await code(forged.listWorkloads()), { status: 401, code: 'ERR_SERVER_UNAUTHENTICATED' });
    forged.close();
    const viewerToken = await admin.createAdminToken({ role: 'viewer', name: 'ci-viewer' });
    const viewer = new WardClient({ baseUrl: server.adminUrl, token: viewerToken.token });
    assert.equal((await viewer.listPolicies()).items.length, 1);
    assert.deepEqual(await code(viewer.apply([policy(0)])), { status: 403, code: 'ERR_SERVER_FORBIDDEN' });
    assert.deepEqual(await code(viewer.listAudit()), { status: 403, code: 'ERR_SERVER_FORBIDDEN' });
    viewer.close();
    const bad = { ...policy(0), spec: { ...policy(0).spec, action: 'PERMIT' } };
    assert.equal((await code(admin.apply([entry('other', `spiffe://${TRUST_DOMAIN}/shop/other`, 'x'), bad]))).code, 'ERR_POLICY_SCHEMA');
    assert.equal((await admin.listEntries()).items.length, 2, 'the valid entry of a refused apply is not stored');
    assert.deepEqual(await code(admin.request('POST', '/v1/apply', { documents: [{ kind: 'x', pad: 'x'.repeat(2 * 1024 * 1024) }] })), { status: 413, code: 'ERR_SERVER_BODY_TOO_LARGE' });

    // The audit log holds the changes with before/after and the refusals with their codes.
    const audit = (await admin.listAudit({ limit: 1000 })).items;
    const actions = audit.map((r) => `${r.action}:${r.outcome}${r.code === undefined ? '' : `:${r.code}`}`);
    for (const expected of ['server.init:ok', 'agent.attest:ok', 'agent.attest:denied:ERR_ATTEST_REPLAYED', 'entry.create:ok', 'svid.issue:denied:ERR_SERVER_CSR_IDENTITY',
      'policy.apply:ok', 'scan.import:ok', 'scan.import:denied:ERR_SCAN_INVALID', 'provenance.import:ok', 'provenance.import:denied:ERR_PROVENANCE_SIGNATURE', 'agent.renew:ok', 'agent.revoke:ok', 'apply:denied:ERR_SERVER_FORBIDDEN', 'apply:denied:ERR_POLICY_SCHEMA', 'apply:denied:ERR_SERVER_BODY_TOO_LARGE']) {
      assert.ok(actions.includes(expected), `audit has ${expected}: ${actions.join(' ')}`);
    }
    const update = audit.filter((r) => r.action === 'policy.apply').at(-1)!;
    assert.match(JSON.stringify(update.before), /vuln\.critical == 0/);
    assert.match(JSON.stringify(update.after), /vuln\.critical == 1/);
    assert.ok(audit.every((r) => !JSON.stringify(r).includes(ts.bootstrapToken) && !JSON.stringify(r).includes(jt.token)), 'no secret in the audit log');
  });
}
