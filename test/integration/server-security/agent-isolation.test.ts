// Agent isolation on the agent API, on both stores: an agent may only put events on the record
// of itself or the workloads it serves (not another agent's), may not mint another agent's
// workload SVIDs, and an SVID from another trust domain's CA or of a revoked agent is refused.
// Every refusal stores nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerReplyError } from '../../../src/api/errors.js';
import { WardClient } from '../../../src/api/client.js';
import { systemClock } from '../../../src/core/clock.js';
import { createEvent } from '../../../src/events/codec.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { generateP256KeyPair, privateKeyToPem } from '../../../src/pki/keys.js';
import { ScriptedAgent, TRUST_DOMAIN, startTestServer } from '../server-lifecycle/harness.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/shop/orders`;
const PAYMENTS = `spiffe://${TRUST_DOMAIN}/shop/payments`;
const entry = (name: string, spiffeId: string, hostName: string) => ({
  apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name },
  spec: { spiffeId, parentId: '*', nodeSelectors: [`join_token:host-name:${hostName}`], ttl: '1h' },
});
const eventFor = (spiffeId: string) => createEvent({ class_uid: 4001, activity_id: 6, severity_id: 1, workload: { spiffe_id: spiffeId }, src_endpoint: { ip: '10.0.0.1' }, dst_endpoint: { ip: '10.0.0.2', port: 8443 }, connection_info: { protocol_name: 'tcp', direction_id: 2 } } as never, systemClock);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : String(e);
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: agents are isolated from each other's workloads, events and credentials`, { timeout: 60_000 }, async (t) => {
    const ts = await startTestServer(kind);
    const other = await startTestServer('sqlite');
    const a = new ScriptedAgent(ts.server);
    const b = new ScriptedAgent(ts.server);
    const foreignAgent = new ScriptedAgent(other.server);
    t.after(async () => {
      for (const x of [a, b, foreignAgent]) x.close();
      await ts.cleanup();
      await other.cleanup();
    });
    const { admin } = ts;
    await admin.apply([entry('orders', ORDERS, 'vm-a'), entry('payments', PAYMENTS, 'vm-b')]);
    await a.attest((await admin.createJoinToken({ attributes: { 'host.name': 'vm-a' } })).token);
    await b.attest((await admin.createJoinToken({ attributes: { 'host.name': 'vm-b' } })).token);
    await a.workloadSvid(ORDERS);
    await b.workloadSvid(PAYMENTS);

    // Events: own workloads and the agent itself are accepted; another agent's workload is not.
    assert.deepEqual(await a.client().sendEvents({ agentId: a.agentId, batch: [{ seq: 1, event: eventFor(ORDERS) }, { seq: 2, event: eventFor(a.agentId) }] }), { accepted: 2, duplicates: 0, ackedSequence: 2 });
    const stored = await ts.server.context.store.events.list({});
    assert.equal(await code(a.client().sendEvents({ agentId: a.agentId, batch: [{ seq: 3, event: eventFor(ORDERS) }, { seq: 4, event: eventFor(PAYMENTS) }] })), '403 ERR_SERVER_FORBIDDEN');
    assert.equal(await code(a.client().sendEvents({ agentId: a.agentId, batch: [{ seq: 5, event: eventFor(`spiffe://${TRUST_DOMAIN}/nobody`) }] })), '403 ERR_SERVER_FORBIDDEN');
    assert.equal(await code(a.client().sendEvents({ agentId: b.agentId, batch: [{ seq: 1, event: eventFor(PAYMENTS) }] })), '403 ERR_SERVER_FORBIDDEN');
    assert.deepEqual(await ts.server.context.store.events.list({}), stored, 'no refused batch stored anything');
    // Sequences are per agent: b's seq 1 is b's own, not a duplicate of a's.
    assert.deepEqual(await b.client().sendEvents({ agentId: b.agentId, batch: [{ seq: 1, event: eventFor(PAYMENTS) }] }), { accepted: 1, duplicates: 0, ackedSequence: 1 });

    // Workload SVIDs: b cannot mint a's workload.
    assert.equal(await code(b.workloadSvid(ORDERS)), '403 ERR_SERVER_CSR_IDENTITY');
    assert.equal((await admin.getWorkload(ORDERS)).agentId, a.agentId, 'the workload stays with its agent');

    // A current SVID of another trust domain's CA, with the very same agent ID, is not a credential.
    await foreignAgent.attest((await other.admin.createJoinToken({})).token);
    const key = generateP256KeyPair();
    const forged = other.server.context.ca.issueSvid({ spiffeId: a.agentId, csr: createSvidCsr({ spiffeId: a.agentId, privateKey: key.privateKey }).pem, ttlMs: 600_000 });
    const forgedClient = new WardClient({ baseUrl: ts.server.agentUrl, tls: { ca: [...ts.server.bundle], cert: forged.certChain.join(''), key: privateKeyToPem(key.privateKey), serverSpiffeId: ts.server.serverSpiffeId } });
    t.after(() => forgedClient.close());
    assert.equal(await code(forgedClient.sendEvents({ agentId: a.agentId, batch: [{ seq: 9, event: eventFor(ORDERS) }] })), '401 ERR_SERVER_UNAUTHENTICATED');
    // A workload SVID (a leaf of this CA, but not an agent) is not an agent credential.
    const w = await a.workloadSvid(ORDERS);
    const asWorkload = new WardClient({ baseUrl: ts.server.agentUrl, tls: { ca: [...ts.server.bundle], cert: w.svid.certChain.join(''), key: w.keyPem, serverSpiffeId: ts.server.serverSpiffeId } });
    t.after(() => asWorkload.close());
    assert.equal(await code(asWorkload.issueWorkloadSvid({ spiffeId: ORDERS, csr: createSvidCsr({ spiffeId: ORDERS, privateKey: key.privateKey }).pem })), '401 ERR_SERVER_AGENT_UNKNOWN');

    // A revoked agent is shut out on a connection it already had open.
    const client = b.client();
    await admin.revokeAgent(b.agentId);
    assert.equal(await code(client.sendEvents({ agentId: b.agentId, batch: [{ seq: 2, event: eventFor(PAYMENTS) }] })), '401 ERR_SERVER_AGENT_UNKNOWN');
    assert.equal(await code(client.renewAgent({ csr: createSvidCsr({ spiffeId: b.agentId, privateKey: b.key.privateKey }).pem })), '401 ERR_SERVER_AGENT_UNKNOWN');
  });
}
