// Admin client certificates: on a TLS admin listener, an X.509-SVID from this trust domain whose
// SPIFFE ID is listed in adminSpiffeIds acts as admin; any other certificate, or none, does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WardClient } from '../../../src/api/client.js';
import { ServerReplyError } from '../../../src/api/errors.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { generateP256KeyPair, privateKeyToPem } from '../../../src/pki/keys.js';
import { ScriptedAgent, TRUST_DOMAIN, startTestServer } from './harness.js';

const ALICE = `spiffe://${TRUST_DOMAIN}/ops/alice`;

async function status(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : `error ${(e as Error).message}`;
  }
}

test('admin client certificates on the TLS admin listener', { timeout: 30_000 }, async (t) => {
  const ts = await startTestServer('sqlite', { adminTls: true, adminSpiffeIds: [ALICE] });
  t.after(() => ts.cleanup());
  const { server } = ts;
  assert.match(server.adminUrl, /^https:/);
  const certFor = (spiffeId: string): { cert: string; key: string } => {
    const key = generateP256KeyPair();
    const svid = server.context.ca.issueSvid({ spiffeId, csr: createSvidCsr({ spiffeId, privateKey: key.privateKey }).pem, ttlMs: 600_000 });
    return { cert: svid.certChain.join(''), key: privateKeyToPem(key.privateKey) };
  };
  const tls = { ca: [...server.bundle], serverSpiffeId: server.serverSpiffeId };
  const alice = new WardClient({ baseUrl: server.adminUrl, tls: { ...tls, ...certFor(ALICE) } });
  const mallory = new WardClient({ baseUrl: server.adminUrl, tls: { ...tls, ...certFor(`spiffe://${TRUST_DOMAIN}/ops/mallory`) } });
  const nobody = new WardClient({ baseUrl: server.adminUrl, tls });
  const token = new WardClient({ baseUrl: server.adminUrl, tls, token: ts.bootstrapToken });
  t.after(() => [alice, mallory, nobody, token].forEach((c) => c.close()));

  assert.equal(await status(alice.listAgents()), 'ok');
  assert.equal(await status(alice.createAdminToken({ role: 'auditor', name: 'from-alice' })), 'ok');
  assert.equal(await status(mallory.listAgents()), '401 ERR_SERVER_UNAUTHENTICATED');
  assert.equal(await status(nobody.listAgents()), '401 ERR_SERVER_UNAUTHENTICATED');
  assert.equal(await status(token.listAgents()), 'ok', 'tokens still work over TLS');

  // An agent's SVID is not an admin credential either.
  const jt = await token.createJoinToken({});
  const agent = new ScriptedAgent(server);
  t.after(() => agent.close());
  await agent.attest(jt.token);
  const asAgent = new WardClient({ baseUrl: server.adminUrl, tls: { ...tls, cert: agent.svid!.certChain.join(''), key: privateKeyToPem(agent.key.privateKey) } });
  t.after(() => asAgent.close());
  assert.equal(await status(asAgent.listAgents()), '401 ERR_SERVER_UNAUTHENTICATED');

  // A certificate from another CA does not even count as a certificate.
  const other = await startTestServer('sqlite', { trustDomain: TRUST_DOMAIN });
  t.after(() => other.cleanup());
  const foreignKey = generateP256KeyPair();
  const foreign = other.server.context.ca.issueSvid({ spiffeId: ALICE, csr: createSvidCsr({ spiffeId: ALICE, privateKey: foreignKey.privateKey }).pem, ttlMs: 600_000 });
  const forged = new WardClient({ baseUrl: server.adminUrl, tls: { ...tls, cert: foreign.certChain.join(''), key: privateKeyToPem(foreignKey.privateKey) } });
  t.after(() => forged.close());
  assert.equal(await status(forged.listAgents()), '401 ERR_SERVER_UNAUTHENTICATED');

  const audit = (await alice.listAudit({ limit: 100 })).items;
  assert.ok(audit.some((r) => r.actor === `cert:${ALICE}` && r.action === 'admin-token.create' && r.outcome === 'ok'));
});
