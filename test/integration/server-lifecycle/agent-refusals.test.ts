// Every refusal on the agent API lands in the audit log with its code (and nothing else is
// stored): bad evidence (malformed, forged, unknown attestor), a replayed join token, a CSR for
// another identity at attest, renew and workload-SVID time, another agent's events, and calls
// without a client certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerReplyError } from '../../../src/api/errors.js';
import { systemClock } from '../../../src/core/clock.js';
import { createEvent } from '../../../src/events/codec.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { generateP256KeyPair } from '../../../src/pki/keys.js';
import { ScriptedAgent, TRUST_DOMAIN, expectedAgentId, startTestServer } from './harness.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : String(e);
  }
}

test('agent API refusals are each audited with their code; none stores anything', { timeout: 60_000 }, async (t) => {
  const ts = await startTestServer('sqlite');
  const agent = new ScriptedAgent(ts.server);
  t.after(async () => {
    agent.close();
    await ts.cleanup();
  });
  const { admin, server } = ts;
  const jt = await admin.createJoinToken({ attributes: { 'host.name': 'vm-a' } });
  await agent.attest(jt.token);
  const before = (await admin.listAudit({ limit: 1000 })).items.length;
  const version = await server.context.store.changes.latest();

  const boot = agent.bootstrapClient();
  t.after(() => boot.close());
  const key = generateP256KeyPair();
  const csrFor = (id: string) => createSvidCsr({ spiffeId: id, privateKey: key.privateKey }).pem;
  const otherId = `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/${'0'.repeat(32)}`;
  const spare = await admin.createJoinToken({});
  const ev = createEvent({ class_uid: 4001, activity_id: 6, severity_id: 1, workload: { spiffe_id: `spiffe://${TRUST_DOMAIN}/x` }, src_endpoint: { ip: '10.0.0.1' }, dst_endpoint: { ip: '10.0.0.2', port: 8443 }, connection_info: { protocol_name: 'tcp', direction_id: 2 } } as never, systemClock);

  const got: Record<string, string> = {
    malformed: await code(boot.attest({ attestor: 'join_token', evidence: { token: 'short' }, csr: csrFor(otherId) })),
    // A well-formed client names the ID its token would yield (else: CSR mismatch, before the store).
    forged: await code(boot.attest({ attestor: 'join_token', evidence: { token: 'A'.repeat(43) }, csr: csrFor(expectedAgentId('A'.repeat(43))) })),
    unknownAttestor: await code(boot.attest({ attestor: 'aws_iid', evidence: {}, csr: csrFor(otherId) })),
    replayed: await code(boot.attest({ attestor: 'join_token', evidence: { token: jt.token }, csr: csrFor(agent.agentId) })),
    attestCsrOther: await code(boot.attest({ attestor: 'join_token', evidence: { token: spare.token }, csr: csrFor(otherId) })),
    renewCsrOther: await code(agent.client().renewAgent({ csr: csrFor(otherId) })),
    svidOther: await code(agent.client().issueWorkloadSvid({ spiffeId: `spiffe://${TRUST_DOMAIN}/not/mine`, csr: csrFor(`spiffe://${TRUST_DOMAIN}/not/mine`) })),
    eventsMalformed: await code(agent.client().sendEvents({ agentId: agent.agentId, events: [] })),
    eventsOther: await code(agent.client().sendEvents({ agentId: otherId, batch: [{ seq: 1, event: ev }] })),
    renewNoCert: await code(boot.renewAgent({ csr: csrFor(agent.agentId) })),
  };
  assert.deepEqual(got, {
    malformed: '400 ERR_ATTEST_MALFORMED',
    forged: '401 ERR_ATTEST_FORGED',
    unknownAttestor: '400 ERR_ATTEST_UNKNOWN_ATTESTOR',
    replayed: '401 ERR_ATTEST_REPLAYED',
    attestCsrOther: '400 ERR_CSR_SPIFFE_ID_MISMATCH',
    renewCsrOther: '400 ERR_CSR_SPIFFE_ID_MISMATCH',
    svidOther: '403 ERR_SERVER_CSR_IDENTITY',
    eventsMalformed: '400 ERR_EVENT_INVALID',
    eventsOther: '403 ERR_SERVER_FORBIDDEN',
    renewNoCert: '401 ERR_SERVER_UNAUTHENTICATED',
  });

  const audit = (await admin.listAudit({ limit: 1000 })).items.slice(before);
  const denied = audit.filter((r) => r.outcome === 'denied').map((r) => `${r.action}:${r.code}`);
  assert.deepEqual(denied.map((d) => d.split(':')[1]), Object.values(got).map((g) => g.split(' ')[1]), `one audit record per refusal, in order: ${denied.join(' ')}`);
  for (const e of ['agent.attest:ERR_ATTEST_MALFORMED', 'agent.attest:ERR_ATTEST_FORGED', 'agent.attest:ERR_ATTEST_UNKNOWN_ATTESTOR', 'agent.attest:ERR_ATTEST_REPLAYED',
    'agent.attest:ERR_CSR_SPIFFE_ID_MISMATCH', 'agent.renew:ERR_CSR_SPIFFE_ID_MISMATCH', 'svid.issue:ERR_SERVER_CSR_IDENTITY', 'events.ingest:ERR_EVENT_INVALID', 'events.ingest:ERR_SERVER_FORBIDDEN']) {
    assert.ok(denied.includes(e), `audit has ${e}: ${denied.join(' ')}`);
  }
  assert.ok(audit.every((r) => !JSON.stringify(r).includes(jt.token) && !JSON.stringify(r).includes(spare.token)), 'no secret in the audit log');
  assert.equal(await server.context.store.changes.latest(), version, 'no refusal changed the registry');
  assert.equal((await admin.listAgents()).items.length, 1);
});

test('a CSR naming another ID than the join token yields is refused before the token is redeemed: the same token then attests', { timeout: 60_000 }, async (t) => {
  const ts = await startTestServer('sqlite');
  const agent = new ScriptedAgent(ts.server);
  t.after(async () => {
    agent.close();
    await ts.cleanup();
  });
  const jt = await ts.admin.createJoinToken({ attributes: { 'host.name': 'vm-b' } });
  const boot = agent.bootstrapClient();
  t.after(() => boot.close());
  const key = generateP256KeyPair();
  const wrong = createSvidCsr({ spiffeId: `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/${'0'.repeat(32)}`, privateKey: key.privateKey }).pem;
  assert.equal(await code(boot.attest({ attestor: 'join_token', evidence: { token: jt.token }, csr: wrong })), '400 ERR_CSR_SPIFFE_ID_MISMATCH');
  assert.equal(await code(boot.attest({ attestor: 'join_token', evidence: { token: jt.token }, csr: wrong })), '400 ERR_CSR_SPIFFE_ID_MISMATCH', 'still unspent, still refused');
  const ok = await agent.attest(jt.token);
  assert.equal(ok.agentId, expectedAgentId(jt.token));
  assert.equal(await code(agent.attest(jt.token)), '401 ERR_ATTEST_REPLAYED', 'spent by the good attest only');
});
