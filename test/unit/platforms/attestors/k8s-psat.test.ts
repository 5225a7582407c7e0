import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../../../src/core/clock.js';
import { K8sPsatAttestor, parseK8sPsatConfig, ProjectedTokenCollector } from '../../../../src/platforms/kubernetes/attestor.js';
import { KubeClient } from '../../../../src/platforms/kubernetes/client.js';
import { digestFromImageId } from '../../../../src/platforms/kubernetes/pod.js';
import { parseWatchLine, PodWatcher, watchLines, type PodWatchNotice } from '../../../../src/platforms/kubernetes/watch.js';
import { PlatformError } from '../../../../src/platforms/errors.js';
import { examplePod, FakeKubeApi } from '../../../fakes/kubernetes-api/server.js';
import { makeSelfSigned, TempDir, type TestCert } from '../../../fakes/pki.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

const dir = new TempDir();
let tls: TestCert;
let api: FakeKubeApi;
const BEARER = 'ward-server-sa-token';

before(async () => {
  tls = await makeSelfSigned(dir, { name: 'CN=kube-apiserver', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01'), san: ['127.0.0.1', 'localhost'] });
  api = await FakeKubeApi.start(tls, BEARER);
});
after(async () => {
  await api.close();
  dir.remove();
});

function attestor(extra: Record<string, unknown> = {}, url = api.url, more: Record<string, unknown> = {}): K8sPsatAttestor {
  return new K8sPsatAttestor(parseK8sPsatConfig({ clusters: { prod: { apiServer: url, caPem: tls.certPem, token: BEARER, audience: 'ward', ...extra }, ...more } }, 'attestors.k8s_psat'));
}

attestorContract('k8s_psat', async () => {
  const pod = api.addPod(examplePod({ name: 'web-7d4b9c8f6d-x2v9q' }));
  // A Job's pod that ran to completion: its token still passes TokenReview (the pod object
  // exists) but a finished pod is no workload.
  const done = api.addPod(examplePod({ name: 'migrate-4xk2p' }));
  done.status.phase = 'Succeeded';
  api.updatePod(done);
  const doneToken = await api.mintToken(done);
  const down = await FakeKubeApi.start(tls, BEARER);
  const downToken = await down.mintToken(down.addPod(examplePod()));
  down.down = true;
  return {
    attestor: attestor({}, api.url, { broken: { apiServer: down.url, caPem: tls.certPem, token: BEARER } }),
    oneTime: false,
    valid: async () => ({ cluster: 'prod', token: await api.mintToken(pod) }),
    forged: async () => {
      // A token with the right claims signed by another key: the API server refuses it.
      const other = await FakeKubeApi.start(tls, BEARER);
      const t = await other.mintToken(pod);
      await other.close();
      return { cluster: 'prod', token: t };
    },
    expired: async (_ctx, clock) => {
      const t = await api.mintToken(pod, { expiresAt: clock.now() - 1000, issuedAt: clock.now() - 3_600_000 });
      return { cluster: 'prod', token: t };
    },
    mismatch: async () => ({ cluster: 'prod', token: doneToken }),
    upstreamDown: async () => ({ cluster: 'broken', token: downToken }),
    expectSelectors: ['k8s_psat:cluster:prod', 'k8s_psat:ns:shop', 'k8s_psat:sa:web', 'k8s_psat:pod-label:app:web', 'k8s_psat:pod-owner:ReplicaSet:web-7d4b9c8f6d', 'k8s_psat:image-digest:sha256:4c3d8e1f0a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d', `k8s_psat:pod-uid:${pod.metadata.uid}`],
    expectAttributes: { 'k8s.namespace': 'shop', 'k8s.sa': 'web', 'k8s.label.app': 'web', 'k8s.label.app.kubernetes.io/name': 'web', 'k8s.pod.uid': pod.metadata.uid, 'image.digest': 'sha256:4c3d8e1f0a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d', 'k8s.owner.kind': 'ReplicaSet' },
    close: async () => down.close(),
  };
});

// The contract's upstreamDown evidence must go to the attestor wired to the down server.
test('an API server that answers 503 fails closed with ERR_ATTEST_UPSTREAM', async () => {
  const down = await FakeKubeApi.start(tls, BEARER);
  try {
    const pod = down.addPod(examplePod());
    const token = await down.mintToken(pod);
    down.down = true;
    await rejectsWith(attestor({}, down.url).attest({ cluster: 'prod', token }, newContext(new ManualClock(START))), 'ERR_ATTEST_UPSTREAM');
  } finally {
    await down.close();
  }
});

test('the agent id is stable per pod and carries the token expiry', async () => {
  const pod = api.addPod(examplePod());
  const r = await attestor().attest({ cluster: 'prod', token: await api.mintToken(pod) }, newContext(new ManualClock(START)));
  assert.equal(r.agentId, `spiffe://${TRUST_DOMAIN}/ward/agent/k8s_psat/prod/${pod.metadata.uid}`);
  assert.equal(r.expiresAt, Date.parse('2026-03-01T12:30:00Z'));
});

test('audience, cluster and service-account allow-lists', async () => {
  const clock = new ManualClock(START);
  const pod = api.addPod(examplePod());
  await rejectsWith(attestor().attest({ cluster: 'prod', token: await api.mintToken(pod, { audience: 'vault' }) }, newContext(clock)), 'ERR_ATTEST_FORGED');
  await rejectsWith(attestor().attest({ cluster: 'staging', token: await api.mintToken(pod) }, newContext(clock)), 'ERR_ATTEST_NOT_ALLOWED');
  await rejectsWith(attestor({ allowedServiceAccounts: ['kube-system:ward-agent'] }).attest({ cluster: 'prod', token: await api.mintToken(pod) }, newContext(clock)), 'ERR_ATTEST_NOT_ALLOWED');
  await attestor({ allowedServiceAccounts: ['shop:web'] }).attest({ cluster: 'prod', token: await api.mintToken(pod) }, newContext(clock));
});

test('a TokenReview answer without status.audiences is refused: the token was valid only for the API server audience', async () => {
  const clock = new ManualClock(START);
  const pod = api.addPod(examplePod());
  // A token for the API server's own audience (as every default service-account token is).
  const token = await api.mintToken(pod, { audience: 'https://kubernetes.default.svc.cluster.local' });
  api.audienceUnaware = true;
  try {
    await rejectsWith(attestor().attest({ cluster: 'prod', token }, newContext(clock)), 'ERR_ATTEST_FORGED');
  } finally {
    api.audienceUnaware = false;
  }
});

test('a pod recreated under the same name (new uid) does not inherit the old token', async () => {
  const clock = new ManualClock(START);
  const pod = api.addPod(examplePod({ name: 'web-stateful-0' }));
  const token = await api.mintToken(pod);
  api.deletePod('shop', 'web-stateful-0');
  api.addPod(examplePod({ name: 'web-stateful-0' }));
  await rejectsWith(attestor().attest({ cluster: 'prod', token }, newContext(clock)), 'ERR_ATTEST_FORGED');
});

test('a wrong bearer token for the API server is an upstream failure, and the token never leaks into errors', async () => {
  const clock = new ManualClock(START);
  const pod = api.addPod(examplePod());
  const token = await api.mintToken(pod);
  const bad = new K8sPsatAttestor(parseK8sPsatConfig({ clusters: { prod: { apiServer: api.url, caPem: tls.certPem, token: 'nope' } } }, 'a'));
  const err = await rejectsWith(bad.attest({ cluster: 'prod', token }, newContext(clock)), 'ERR_ATTEST_UPSTREAM');
  assert.ok(!JSON.stringify({ m: err.message, d: err.details }).includes(token));
});

test('TLS: an API server certificate not signed by the configured CA is refused', async () => {
  const other = await makeSelfSigned(dir, { name: 'CN=other', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01'), san: ['127.0.0.1'] });
  const pod = api.addPod(examplePod());
  const a = new K8sPsatAttestor(parseK8sPsatConfig({ clusters: { prod: { apiServer: api.url, caPem: other.certPem, token: BEARER } } }, 'a'));
  await rejectsWith(a.attest({ cluster: 'prod', token: await api.mintToken(pod) }, newContext(new ManualClock(START))), 'ERR_ATTEST_UPSTREAM');
});

test('the agent-side collector reads the projected token file', async () => {
  const pod = api.addPod(examplePod());
  const token = await api.mintToken(pod);
  const path = dir.file('ward-agent', `${token}\n`);
  const ev = await new ProjectedTokenCollector('prod', path).collect();
  const r = await attestor().attest(ev, newContext(new ManualClock(START)));
  assert.equal(r.attributes['k8s.pod.name']?.value, pod.metadata.name);
});

test('image digests are read from every imageID form runtimes report', () => {
  const d = 'sha256:' + 'ab'.repeat(32);
  assert.equal(digestFromImageId(`docker-pullable://nginx@${d}`), d);
  assert.equal(digestFromImageId(`docker.io/library/nginx@${d}`), d);
  assert.equal(digestFromImageId(d), d);
  assert.equal(digestFromImageId('nginx:latest'), undefined);
  assert.equal(digestFromImageId(`x@${d}junk`), undefined);
});

test('watch: list, stream events, track BOOKMARK resourceVersions, resume after a normal stream end', async () => {
  const notices: PodWatchNotice[] = [];
  const waitFor = async (pred: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred(), `condition not reached; notices: ${notices.map((n) => n.kind).join(',')}`);
  };
  const client = new KubeClient({ apiServer: api.url, ca: tls.certPem, token: BEARER });
  const watcher = new PodWatcher({ client, onNotice: (n) => notices.push(n), retryDelayMs: 20 });
  const ac = new AbortController();
  const running = watcher.run(ac.signal);
  try {
    await waitFor(() => watcher.watches === 1);
    const before = watcher.pods().size;
    assert.ok(before > 0, 'initial list filled the cache');
    const a = api.addPod(examplePod({ name: 'watch-a' }));
    await waitFor(() => watcher.pods().has(a.metadata.uid));
    a.metadata.labels.version = 'v2';
    api.updatePod(a);
    await waitFor(() => notices.some((n) => n.kind === 'MODIFIED' && (n.pod.metadata as { name: string }).name === 'watch-a'));
    api.bookmark();
    await waitFor(() => notices.some((n) => n.kind === 'BOOKMARK'));
    assert.equal(watcher.resourceVersion, api.resourceVersion);

    // A normal stream end resumes from the last (bookmarked) resourceVersion without relisting.
    const bookmarked = watcher.resourceVersion;
    api.endWatches();
    await waitFor(() => watcher.watches === 2);
    assert.equal(watcher.relists, 1);
    const lastWatch = api.requests.filter((r) => r.includes('watch=1')).at(-1) ?? '';
    assert.match(lastWatch, new RegExp(`[?&]resourceVersion=${bookmarked}(&|$)`));
    assert.match(lastWatch, /allowWatchBookmarks=true/);

    api.deletePod('shop', 'watch-a');
    await waitFor(() => !watcher.pods().has(a.metadata.uid));
    assert.ok(notices.some((n) => n.kind === 'DELETED' && (n.pod.metadata as { name: string }).name === 'watch-a'));
  } finally {
    ac.abort();
    await running;
  }
});

test('watch: a resumed watch from a compacted resourceVersion gets the 410 ERROR and relists', async () => {
  const client = new KubeClient({ apiServer: api.url, ca: tls.certPem, token: BEARER });
  const notices: PodWatchNotice[] = [];
  const watcher = new PodWatcher({ client, onNotice: (n) => notices.push(n), retryDelayMs: 20 });
  const ac = new AbortController();
  const running = watcher.run(ac.signal);
  const waitFor = async (pred: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred(), `condition not reached; notices: ${notices.map((n) => n.kind).join(',')}`);
  };
  try {
    await waitFor(() => watcher.watches === 1);
    const c = api.addPod(examplePod({ name: 'watch-c' }));
    await waitFor(() => watcher.pods().has(c.metadata.uid));
    // Compact and cut the stream with the in-stream 410; a pod deleted in the same moment is
    // only visible through the relist.
    api.deletePod('shop', 'watch-c');
    api.expireWatches();
    await waitFor(() => watcher.relists === 2);
    assert.ok(notices.some((n) => n.kind === 'RELIST' && n.reason === 'gone'));
    assert.ok(!watcher.pods().has(c.metadata.uid));
    assert.ok(notices.some((n) => n.kind === 'DELETED' && (n.pod.metadata as { name: string }).name === 'watch-c'));
    await waitFor(() => watcher.watches === 2);
    const d = api.addPod(examplePod({ name: 'watch-d' }));
    await waitFor(() => watcher.pods().has(d.metadata.uid));
  } finally {
    ac.abort();
    await running;
  }
});

test('fuzz: watch lines parse or fail with ERR_PLATFORM_RESPONSE_INVALID; splitting is chunk-independent', async () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 100 }), fc.json({ maxDepth: 3 }), fc.record({ type: fc.constantFrom('ADDED', 'ERROR', 'BOOKMARK', 'X'), object: fc.oneof(fc.object({ maxDepth: 2 }), fc.constant(null)) }).map((o) => JSON.stringify(o))), (line) => {
      try {
        const e = parseWatchLine(line);
        return ['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'].includes(e.type);
      } catch (error) {
        return error instanceof PlatformError && error.code === 'ERR_PLATFORM_RESPONSE_INVALID';
      }
    }),
    { numRuns: 300 },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\n') && s.trim() === s && s.length > 0), { maxLength: 8 }), fc.array(fc.nat(50), { maxLength: 6 }), async (lines, cuts) => {
      const text = lines.map((l) => `${l}\n`).join('');
      const points = [...new Set(cuts.map((c) => Math.min(c, text.length)))].sort((x, y) => x - y);
      const chunks: string[] = [];
      let prev = 0;
      for (const p of [...points, text.length]) {
        chunks.push(text.slice(prev, p));
        prev = p;
      }
      const got: string[] = [];
      for await (const l of watchLines((async function* () { yield* chunks; })())) got.push(l);
      assert.deepEqual(got, lines);
    }),
    { numRuns: 200 },
  );
});
