// The server with the k8s_psat attestor against a local fake Kubernetes API server (real TLS,
// real TokenReview and Pod JSON): a pod's agent attests with its projected token, gets an SVID
// for an entry selected by namespace and service account, and its workload carries the pod's
// facts (namespace, service account, labels, image digest) — then a Trivy report for that
// digest. A forged token and a token for a deleted pod are refused and audited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ServerReplyError } from '../../../src/api/errors.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { examplePod, FakeKubeApi } from '../../fakes/kubernetes-api/server.js';
import { makeSelfSigned, TempDir } from '../../fakes/pki.js';
import { ScriptedAgent, TRUST_DOMAIN, opensslVerify, startTestServer } from '../server-lifecycle/harness.js';

const DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : String(e);
  }
}

test('k8s_psat: pod agent attests through TokenReview, its workload carries the pod facts', { timeout: 60_000 }, async (t) => {
  const dir = new TempDir();
  t.after(() => dir.remove());
  const tls = await makeSelfSigned(dir, { name: 'CN=kube-apiserver', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01'), san: ['127.0.0.1', 'localhost'] });
  const api = await FakeKubeApi.start(tls, 'ward-server-sa-token');
  t.after(() => api.close());
  // Tokens valid around the real time: the server's TLS certificates are, too.
  api.now = () => Date.now();
  const mint = (p: Parameters<FakeKubeApi['mintToken']>[0]): Promise<string> => api.mintToken(p, { issuedAt: Date.now() - 60_000, expiresAt: Date.now() + 3_600_000 });
  const ts = await startTestServer('sqlite', {
    attestors: { join_token: {}, k8s_psat: { clusters: { prod: { apiServer: api.url, caPem: tls.certPem, token: 'ward-server-sa-token', audience: 'ward' } } } },
  });
  t.after(() => ts.cleanup());
  const { admin, server } = ts;

  const pod = api.addPod(examplePod({ namespace: 'shop', name: 'orders-5f7d8-abcde', serviceAccount: 'orders', labels: { app: 'orders' }, image: 'registry.example.com/shop/orders:1.4.2', digest: DIGEST }));
  const token = await mint(pod);
  await admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name: 'orders' }, spec: { spiffeId: ORDERS, parentId: '*', nodeSelectors: ['k8s_psat:cluster:prod', 'k8s_psat:ns:shop', 'k8s_psat:sa:orders'] } }]);

  const agent = new ScriptedAgent(server);
  t.after(() => agent.close());
  const agentId = `spiffe://${TRUST_DOMAIN}/ward/agent/k8s_psat/prod/${pod.metadata.uid as string}`;
  const csrAgent = createSvidCsr({ spiffeId: agentId, privateKey: agent.key.privateKey }).pem;
  const boot = agent.bootstrapClient();
  t.after(() => boot.close());
  const res = await boot.attest({ attestor: 'k8s_psat', evidence: { cluster: 'prod', token }, csr: csrAgent });
  assert.equal(res.agentId, agentId);
  agent.agentId = res.agentId;
  agent.svid = res.svid;
  agent.bundle = res.bundle;
  assert.ok(api.requests.some((p) => p.includes('tokenreviews')), 'the server asked the API server');

  const w = await agent.workloadSvid(ORDERS);
  assert.match(opensslVerify(ts.dir, res.bundle, w.svid.certChain), /OK/);
  const workload = await admin.getWorkload(ORDERS);
  assert.equal(workload.imageDigest, DIGEST);
  const values = Object.fromEntries(Object.entries(workload.attributes).map(([k, a]) => [k, a.value]));
  assert.equal(values['k8s.namespace'], 'shop');
  assert.equal(values['k8s.sa'], 'orders');
  assert.equal(values['k8s.label.app'], 'orders');
  assert.equal(values['image.digest'], DIGEST);
  assert.equal(workload.attributes['k8s.namespace']?.source, 'attestor:k8s_psat');

  const imported = await admin.importScan(readFileSync('test/fixtures/scans/trivy-orders.json', 'utf8'));
  assert.deepEqual(imported.workloadsUpdated, [ORDERS]);
  assert.equal((await admin.getWorkload(ORDERS)).attributes['vuln.critical']?.value, 1);

  // Refusals: a token the API server never minted; a token whose pod is gone.
  const csr2 = createSvidCsr({ spiffeId: agentId, privateKey: agent.key.privateKey }).pem;
  const forged = `${token.slice(0, -4)}AAAA`;
  assert.equal(await code(boot.attest({ attestor: 'k8s_psat', evidence: { cluster: 'prod', token: forged }, csr: csr2 })), '401 ERR_ATTEST_FORGED');
  const gone = api.addPod(examplePod({ namespace: 'shop', name: 'orders-5f7d8-zzzzz', serviceAccount: 'orders' }));
  const goneToken = await mint(gone);
  api.deletePod('shop', 'orders-5f7d8-zzzzz');
  assert.match(await code(boot.attest({ attestor: 'k8s_psat', evidence: { cluster: 'prod', token: goneToken }, csr: csr2 })), /^401 ERR_ATTEST_(FORGED|MISMATCH)$/);
  assert.equal(await code(boot.attest({ attestor: 'k8s_psat', evidence: { cluster: 'staging', token }, csr: csr2 })), '401 ERR_ATTEST_NOT_ALLOWED');
  assert.equal((await admin.listAgents()).items.length, 1);
  const denied = (await admin.listAudit({ limit: 200 })).items.filter((r) => r.action === 'agent.attest' && r.outcome === 'denied');
  assert.equal(denied.length, 3);
});
