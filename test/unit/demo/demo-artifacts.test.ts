// The demo's supply-chain documents and Kubernetes stand-in, checked by the real consumers: the
// Trivy report by the scanner import, the provenance by the DSSE/SLSA verifier, the TokenReview
// and Pod answers by the k8s_psat attestor's client; and the demo policies parse cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importScanReport } from '../../../src/platforms/scanners/index.js';
import { ProvenanceVerifier } from '../../../src/platforms/provenance/index.js';
import { KubeClient } from '../../../src/platforms/kubernetes/client.js';
import { parsePolicyDocuments } from '../../../src/policy/index.js';
import { imageDigest, provenanceSigner, trivyReport, DEMO_REGISTRY } from '../../../src/cli/commands/demo/artifacts.js';
import { DemoKubeApi } from '../../../src/cli/commands/demo/kube-api.js';
import { demoPolicies } from '../../../src/cli/commands/demo/policies.js';

test('Trivy reports: clean has no criticals, the mid-run one has CVE-2023-38545 for the orders digest', () => {
  const clean = importScanReport(trivyReport('orders', false), { observedAt: 1 });
  assert.deepEqual(clean.imageDigests, [imageDigest('orders')]);
  assert.equal(clean.attributes['vuln.critical']?.value, 0);
  const bad = importScanReport(trivyReport('orders', true), { observedAt: 1 });
  assert.equal(bad.attributes['vuln.critical']?.value, 1);
  assert.equal(bad.attributes['vuln.maxCvss']?.value, 9.8);
});

test('provenance: signed SLSA v1 verifies against the demo builder key, and not against another', () => {
  const signer = provenanceSigner();
  const r = new ProvenanceVerifier({ keys: [{ keyid: 'ward-demo-builder', publicKey: signer.publicKeyPem }] }).verify(signer.envelope('payments') as object, 1);
  assert.equal(r.verified, true);
  assert.deepEqual(r.subjectDigests, [imageDigest('payments')]);
  assert.equal(r.attributes['build.repo']?.value !== undefined, true);
  const other = provenanceSigner();
  assert.throws(() => new ProvenanceVerifier({ keys: [{ publicKey: other.publicKeyPem }] }).verify(signer.envelope('payments') as object, 1));
});

test('kube stand-in: TokenReview authenticates its own projected tokens only; Pod JSON carries the image digest', async (t) => {
  const api = await DemoKubeApi.start('bearer-1');
  t.after(() => api.close());
  const pod = api.addPod({ namespace: 'shop', name: 'orders-6d9f7c-abc123', serviceAccount: 'orders', image: `${DEMO_REGISTRY}/orders:1.0.0`, digest: imageDigest('orders'), labels: { app: 'orders' } });
  const client = new KubeClient({ apiServer: api.url, token: 'bearer-1' });
  const token = await api.mintToken(pod);
  const review = await client.tokenReview(token, ['ward']);
  assert.equal(review.authenticated, true);
  assert.equal(review.username, 'system:serviceaccount:shop:orders');
  assert.deepEqual(review.extra['authentication.kubernetes.io/pod-uid'], [pod.uid]);
  assert.equal((await client.tokenReview(`${token.slice(0, -4)}AAAA`, ['ward'])).authenticated, false);
  assert.equal((await client.tokenReview(await api.mintToken(pod, 'other'), ['ward'])).authenticated, false);
  const json = (await client.getPod('shop', pod.name)) as { status: { containerStatuses: { imageID: string }[] } };
  assert.equal(json.status.containerStatuses[0]!.imageID, `${DEMO_REGISTRY}/orders@${imageDigest('orders')}`);
  assert.equal(await client.getPod('shop', 'nope'), undefined);
  await assert.rejects(new KubeClient({ apiServer: api.url, token: 'wrong' }).tokenReview(token, ['ward']));
});

test('demo policies parse without issues', () => {
  for (const doc of demoPolicies()) assert.deepEqual(parsePolicyDocuments(JSON.stringify(doc)).issues, [], JSON.stringify(doc).slice(0, 80));
});
