// The control-plane client attesting as a pod: its projected service-account token (minted by the
// local fake Kubernetes API server, checked by the server with TokenReview) predicts the agent ID
// from the token's pod claim, and the workload SVID it gets carries the pod's identity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../../../src/core/clock.js';
import { createLogger } from '../../../../src/core/logging.js';
import { ControlPlane } from '../../../../src/agent/control/controller.js';
import { ControlError } from '../../../../src/agent/control/errors.js';
import { examplePod } from '../../../fakes/kubernetes-api/server.js';
import { TempDir } from '../../../fakes/pki.js';
import { TRUST_DOMAIN, startTestServer } from '../../../integration/server-lifecycle/harness.js';
import { fakeKube } from './support.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

test('k8s_psat: a pod agent attests with its projected token and serves its workload SVID', { timeout: 60_000 }, async (t) => {
  const dir = new TempDir();
  t.after(() => dir.remove());
  const { api, k8sPsat } = await fakeKube(t, dir);
  const ts = await startTestServer('sqlite', { attestors: { join_token: {}, k8s_psat: k8sPsat } });
  t.after(() => ts.cleanup());
  await ts.admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name: 'orders' }, spec: { spiffeId: ORDERS, parentId: '*', nodeSelectors: ['k8s_psat:cluster:prod', 'k8s_psat:ns:shop', 'k8s_psat:sa:orders'], selectors: ['ward:service:orders'] } }]);

  const pod = api.addPod(examplePod({ namespace: 'shop', name: 'orders-5f7d8-abcde', serviceAccount: 'orders', labels: { app: 'orders' } }));
  const tokenPath = join(ts.dir, 'token');
  writeFileSync(tokenPath, await api.mintToken(pod, { issuedAt: Date.now() - 60_000, expiresAt: Date.now() + 3_600_000 }));
  const base = { serverUrl: ts.server.agentUrl, serverBundlePem: ts.server.bundle.join(''), trustDomain: TRUST_DOMAIN, clock: systemClock, logger: createLogger({ name: 't', level: 'silent' }) };

  const cp = await ControlPlane.connect({ ...base, attestor: { attestor: 'k8s_psat', cluster: 'prod', tokenPath }, service: 'orders' });
  t.after(() => cp.stop());
  assert.equal(cp.session.agentId, `spiffe://${TRUST_DOMAIN}/ward/agent/k8s_psat/prod/${pod.metadata.uid as string}`);
  assert.equal(cp.spiffeId, ORDERS);
  const workload = await ts.admin.getWorkload(ORDERS);
  assert.equal(workload.attributes['k8s.label.app']?.value, 'orders');
  assert.equal(workload.attributes['k8s.namespace']?.source, 'attestor:k8s_psat');

  // A token file holding something that is not a JWT: refused before anything is sent.
  const bad = join(ts.dir, 'bad-token');
  writeFileSync(bad, 'not-a-token');
  await assert.rejects(ControlPlane.connect({ ...base, attestor: { attestor: 'k8s_psat', cluster: 'prod', tokenPath: bad }, service: 'orders' }), (e: unknown) => (e as { code?: string }).code !== undefined && (e instanceof ControlError || (e as { code: string }).code.startsWith('ERR_ATTEST')));
});
