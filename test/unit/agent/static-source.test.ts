// Static mode speaks Ward's policy language (ADR 0045): the policy directory holds the documents
// `ward policy validate` accepts, compiled by the policy layer and decided by PolicyAuthorizer.
// Real agents (startAgent, in-process) on real mTLS sockets, real files, real reloads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/core/logging.js';
import { isWardError } from '../../../src/core/errors.js';
import { startAgent, type RunningAgent } from '../../../src/agent/agent.js';
import { parseAgentConfig, type AgentConfig } from '../../../src/agent/config.js';
import type { PolicyDecision } from '../../../src/agent/policy-authorizer.js';
import { AuthorizerHolder, type ConnectionContext, type RequestContext } from '../../../src/agent/proxy/authorizer.js';
import { AgentMetrics } from '../../../src/agent/metrics.js';
import { TrustState } from '../../../src/agent/proxy/trust.js';
import { StaticSource, readTlsMaterial } from '../../../src/agent/static-source.js';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { mtlsConnect, plainConnect, roundTrip, startEchoApp, startHttpApp, waitClose } from './support/net.js';
import { freePort } from './control/support.js';

const TD = 'spiffe://example.org';
const ORDERS = `${TD}/ns/shop/sa/orders`;
const WEB = `${TD}/ns/shop/sa/web`;
const LEGACY = `${TD}/ns/shop/sa/legacy`;
const STRANGER = `${TD}/ns/shop/sa/stranger`; // no Workload document: derived attributes only
const OUTSIDER = `${TD}/ns/other/sa/x`;

let root: string;
let ca: TestCa;
const svids: Record<string, TestSvid> = {};
let echo: Awaited<ReturnType<typeof startEchoApp>>;
let http: Awaited<ReturnType<typeof startHttpApp>>;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ward-static-src-'));
  ca = createTestCa('static-src');
  for (const id of [ORDERS, WEB, LEGACY, STRANGER, OUTSIDER]) svids[id] = ca.issue([id]);
  writeFileSync(join(root, 'bundle.pem'), ca.certPem);
  echo = await startEchoApp();
  http = await startHttpApp();
});

after(async () => {
  await echo.close();
  await http.close();
  ca.cleanup();
  rmSync(root, { recursive: true, force: true });
});

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** A log sink the tests read: every pino line, parsed. */
function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ name: 'test', level: 'info', destination }), lines };
}

interface Setup {
  dir: string;
  policyDir: string;
  config: AgentConfig;
}

/** Identity files for `self` plus a policy directory with `files`; inbound/outbound as given. */
function setup(name: string, self: string, files: Record<string, string>, proxy: Record<string, unknown>): Setup {
  const dir = join(root, name);
  const policyDir = join(dir, 'policy');
  mkdirSync(policyDir, { recursive: true });
  writeFileSync(join(dir, 'svid.pem'), svids[self]!.certPem);
  writeFileSync(join(dir, 'key.pem'), svids[self]!.keyPem);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(policyDir, f), text);
  const config = parseAgentConfig({
    identity: { svid: 'svid.pem', key: 'key.pem', bundle: '../bundle.pem' }, policyDir: 'policy', admin: 'off', reloadInterval: '50ms', ...proxy,
  }, dir);
  return { dir, policyDir, config };
}

/** A StaticSource over the files, without listeners: decisions are asked of the holder directly. */
async function loadSource(s: Setup): Promise<{ source: StaticSource; holder: AuthorizerHolder; metrics: AgentMetrics; lines: Record<string, unknown>[] }> {
  const trust = new TrustState(await readTlsMaterial(s.config));
  const holder = new AuthorizerHolder();
  const metrics = new AgentMetrics();
  const { logger, lines } = captureLogger();
  const source = new StaticSource(s.config, trust, holder, metrics, logger, systemClock);
  await source.load();
  return { source, holder, metrics, lines };
}

const inbound = (from: string, port: number, destination = ORDERS): ConnectionContext => ({
  direction: 'inbound', source: { spiffeId: from, authenticated: from !== 'unauthenticated', attributes: {} }, destination, port,
});
const outbound = (service: string, self: string): ConnectionContext => ({
  direction: 'outbound', source: { spiffeId: self, authenticated: true, attributes: {} }, destination: service, port: 1,
});
const req = (from: string, port: number, method: string, path: string): RequestContext => ({
  connection: inbound(from, port), method, path, host: 'orders', headers: {}, jwtClaims: undefined,
});
const silent = createLogger({ name: 'test', level: 'silent' });
const ref = (d: PolicyDecision | { allow: boolean; reference: string }): string => `${d.allow ? 'allow' : 'deny'} ${d.reference}`;

function httpsGet(port: number, path: string, svid: TestSvid): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = httpsRequest({
      host: '127.0.0.1', port, path, agent: false, cert: svid.certPem, key: svid.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined,
    }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.setTimeout(5000, () => r.destroy(new Error('timeout')));
    r.end();
  });
}

async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs `fn` against a real agent started from the setup's config, and stops it. */
async function withAgent(s: Setup, fn: (agent: RunningAgent) => Promise<void>): Promise<void> {
  const agent = await startAgent(s.config, { clock: systemClock, logger: silent });
  try {
    await fn(agent);
  } finally {
    await agent.stop();
  }
}

/** An HTTP inbound port to the HTTP app and a TCP one to the echo app. */
const twoPorts = (httpPort: number, tcpPort: number): Record<string, unknown> => ({
  inbound: [
    { port: httpPort, host: '127.0.0.1', protocol: 'http', appPort: http.port },
    { port: tcpPort, host: '127.0.0.1', protocol: 'tcp', appPort: echo.port },
  ],
});

const accessPolicy = (httpPort: number, tcpPort: number, paths: string[] = ['/public/*'], tcpFrom = WEB): string => `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-api, namespace: shop }
spec:
  subject: { spiffeIds: ["${ORDERS}"] }
  ingress:
    - from: [{ spiffeIds: ["${WEB}"] }]
      to: [{ ports: [${httpPort}], methods: [GET], paths: ${JSON.stringify(paths)} }]
    - from: [{ spiffeIds: ["${tcpFrom}"] }]
      to: [{ ports: [${tcpPort}] }]
`;

test('a directory of Ward policies drives a real agent: L7 method/path rules answer 403, L4 rules refuse, with engine references', async () => {
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  const s = setup('engine', ORDERS, { 'orders.yaml': accessPolicy(httpPort, tcpPort) }, twoPorts(httpPort, tcpPort));
  await withAgent(s, async (agent) => {
  assert.equal((await httpsGet(httpPort, '/public/items', svids[WEB]!)).status, 200);
  const denied = await httpsGet(httpPort, '/admin', svids[WEB]!);
  assert.equal(denied.status, 403);
  assert.equal(denied.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');
  const authz = agent.authorizers.current;
  assert.equal(ref(authz.authorizeRequest(req(WEB, httpPort, 'GET', '/public/a'))), 'allow shop/orders-api/ingress[0]');
  assert.equal(ref(authz.authorizeRequest(req(WEB, httpPort, 'POST', '/public/a'))), 'deny default-deny');
  assert.equal(ref(authz.authorizeRequest(req(WEB, httpPort, 'GET', '/admin'))), 'deny default-deny');
  // L4: web's tunnel echoes; a valid SVID without a rule is refused at the handshake's end.
  const ok = await mtlsConnect(tcpPort, svids[WEB]!, ca.certPem);
  assert.equal((await roundTrip(ok, 'ping', 4)).data, 'ping');
  ok.destroy();
  const other = await mtlsConnect(tcpPort, svids[LEGACY]!, ca.certPem);
  const r = await roundTrip(other, 'ping', 4);
  assert.deepEqual(r, { data: '', closed: true });
  assert.equal(ref(authz.authorizeConnection(inbound(LEGACY, tcpPort))), 'deny default-deny');
  assert.equal(ref(authz.authorizeConnection(inbound(WEB, tcpPort))), 'allow shop/orders-api/ingress[1]');
  // STRICT by default: a plaintext client is refused with the engine's reason.
  assert.equal(ref(authz.authorizeConnection(inbound('unauthenticated', tcpPort))), 'deny mtls-required');
  });
});

test('Workload documents give peers attributes: selectors on vuln.critical decide; an unknown peer has only derived attributes', async () => {
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  const s = setup('attrs', ORDERS, {
    'workloads.yaml': `
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: { name: shop/web }
spec: { spiffeId: "${WEB}", attributes: { vuln.critical: 0 } }
---
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: { name: shop/legacy }
spec: { spiffeId: "${LEGACY}", attributes: { vuln.critical: 3 } }
`,
    'policy.yaml': `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: clean-callers }
spec:
  subject: { spiffeIds: ["${ORDERS}"] }
  ingress:
    - from: [{ selector: { matchExpressions: ["vuln.critical == 0"] } }]
    - from: [{ selector: { matchAttributes: { k8s.namespace: shop, k8s.serviceAccount: stranger } } }]
      to: [{ ports: [${tcpPort}] }]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-vulnerable }
spec:
  subject: { spiffeIds: ["${ORDERS}"] }
  action: DENY
  ingress:
    - from: [{ selector: { matchExpressions: ["vuln.critical > 0"] } }]
`,
  }, twoPorts(httpPort, tcpPort));
  await withAgent(s, async (agent) => {
  assert.equal((await httpsGet(httpPort, '/x', svids[WEB]!)).status, 200);
  const legacy = await mtlsConnect(tcpPort, svids[LEGACY]!, ca.certPem);
  assert.deepEqual(await roundTrip(legacy, 'ping', 4), { data: '', closed: true });
  const stranger = await mtlsConnect(tcpPort, svids[STRANGER]!, ca.certPem);
  assert.equal((await roundTrip(stranger, 'ping', 4)).data, 'ping', 'derived k8s.namespace/k8s.serviceAccount match');
  stranger.destroy();
  const authz = agent.authorizers.current;
  assert.equal(ref(authz.authorizeConnection(inbound(WEB, tcpPort))), 'allow clean-callers/ingress[0]');
  assert.equal(ref(authz.authorizeConnection(inbound(LEGACY, tcpPort))), 'deny deny-vulnerable/ingress[0]');
  // No Workload document: vuln.critical is absent, so neither the ALLOW (== 0) nor the DENY (> 0) matches it.
  assert.equal(ref(authz.authorizeConnection(inbound(STRANGER, tcpPort))), 'allow clean-callers/ingress[1]');
  assert.equal(ref(authz.authorizeRequest(req(STRANGER, httpPort, 'GET', '/x'))), 'deny default-deny');
  assert.equal(ref(authz.authorizeConnection(inbound(OUTSIDER, tcpPort))), 'deny default-deny');
  });
});

test('an Istio AuthorizationPolicy and a Kubernetes NetworkPolicy in the directory are imported and enforced', async () => {
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  const s = setup('istio', ORDERS, {
    'istio.yaml': `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: orders-get, namespace: shop }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["example.org/ns/shop/sa/web"] } }]
      to: [{ operation: { methods: [GET], paths: ["/api/*"] } }]
`,
    'netpol.yaml': `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: orders-tcp, namespace: shop }
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: shop } } }]
      ports: [{ port: ${tcpPort} }]
`,
  }, twoPorts(httpPort, tcpPort));
  await withAgent(s, async (agent) => {
  assert.equal((await httpsGet(httpPort, '/api/orders', svids[WEB]!)).status, 200);
  assert.equal((await httpsGet(httpPort, '/admin', svids[WEB]!)).status, 403);
  // No rule can admit legacy on the HTTP port: refused at the connection, before any request.
  await assert.rejects(httpsGet(httpPort, '/api/orders', svids[LEGACY]!), /socket hang up|ECONNRESET/);
  const authz = agent.authorizers.current;
  assert.equal(ref(authz.authorizeConnection(inbound(LEGACY, httpPort))), 'deny default-deny');
  assert.equal(ref(authz.authorizeRequest(req(WEB, httpPort, 'GET', '/api/orders'))), 'allow shop/orders-get/ingress[0]');
  const inShop = await mtlsConnect(tcpPort, svids[LEGACY]!, ca.certPem);
  assert.equal((await roundTrip(inShop, 'ping', 4)).data, 'ping');
  inShop.destroy();
  const outsider = await mtlsConnect(tcpPort, svids[OUTSIDER]!, ca.certPem);
  assert.deepEqual(await roundTrip(outsider, 'ping', 4), { data: '', closed: true });
  });
});

test('outbound: egress rules decide by upstream name → target SPIFFE ID and port; an unknown service is denied', async () => {
  const s = setup('egress', WEB, {
    'egress.yaml': `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: web-egress }
spec:
  subject: { spiffeIds: ["${WEB}"] }
  egress:
    - to: [{ spiffeIds: ["${ORDERS}"] }]
      operations: [{ ports: [8443] }]
`,
  }, {
    outbound: [
      { name: 'orders', listen: 0, address: '127.0.0.1:8443', allowedIds: [ORDERS] },
      { name: 'orders-admin', listen: 0, address: '127.0.0.1:9443', allowedIds: [ORDERS] },
      { name: 'billing', listen: 0, address: '127.0.0.1:8443', allowedIds: [`${TD}/ns/pay/sa/billing`] },
    ],
  });
  const { holder, source } = await loadSource(s);
  await source.stop();
  // Allowed by web's egress; the final reason is the destination side's (orders is not protected here).
  const ok = holder.current.authorizeConnection(outbound('orders', WEB)) as PolicyDecision;
  assert.equal(ref(ok), 'allow not-protected');
  assert.deepEqual([ok.engine?.egress?.policy, ok.engine?.egress?.rule], ['web-egress', 0]);
  assert.equal(ref(holder.current.authorizeConnection(outbound('orders-admin', WEB))), 'deny default-deny');
  assert.equal(ref(holder.current.authorizeConnection(outbound('billing', WEB))), 'deny default-deny');
  assert.equal(ref(holder.current.authorizeConnection(outbound('nowhere', WEB))), 'deny unknown-service');
});

test('a new version with a YAML or policy error is refused with its code, counted once, and the last good set stays; live connections are re-checked on change', async () => {
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  const s = setup('reload', ORDERS, { 'orders.yaml': accessPolicy(httpPort, tcpPort) }, twoPorts(httpPort, tcpPort));
  const { logger, lines } = captureLogger();
  const agent: RunningAgent = await startAgent(s.config, { clock: systemClock, logger });
  const file = join(s.policyDir, 'orders.yaml');
  const errors = async (): Promise<number> => (await agent.metrics.registry.getSingleMetric('ward_agent_policy_reloads_total')!.get()).values.find((v) => v.labels.what === 'policy' && v.labels.result === 'error')?.value ?? 0;
  const refusals = (): Record<string, unknown>[] => lines.filter((l) => l.msg === 'policy reload refused; keeping the last good one');
  try {
    const live = await mtlsConnect(tcpPort, svids[WEB]!, ca.certPem);
    assert.equal((await roundTrip(live, 'a', 1)).data, 'a');
    const version = agent.authorizers.current.version;

    writeAtomic(file, 'apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: orders-api\nspec: [');
    await eventually(() => refusals().length === 1);
    assert.equal(refusals()[0]!.code, 'ERR_POLICY_YAML');
    writeAtomic(file, accessPolicy(httpPort, tcpPort).replace('ingress:', 'ingres:'));
    await eventually(() => refusals().length === 2);
    assert.equal(refusals()[1]!.code, 'ERR_POLICY_SCHEMA');
    assert.match(String((refusals()[1]!.first as string[])[0]), /orders\.yaml#0 spec\.ingres: ERR_POLICY_SCHEMA/);
    // A duplicate in a second file is a cross-document error: the whole version is refused.
    writeAtomic(file, accessPolicy(httpPort, tcpPort));
    writeAtomic(join(s.policyDir, 'dup.yaml'), accessPolicy(httpPort, tcpPort, ['/x']));
    await eventually(() => refusals().length === 3);
    assert.equal(refusals()[2]!.code, 'ERR_POLICY_DUPLICATE');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(refusals().length, 3, 'a refused version is logged once, not on every tick');
    assert.equal(await errors(), 3);
    assert.equal(agent.authorizers.current.version, version, 'the last good set stays in force');
    assert.equal((await httpsGet(httpPort, '/public/a', svids[WEB]!)).status, 200);
    assert.equal((await roundTrip(live, 'b', 1)).data, 'b', 'the live connection survived the refused versions');

    // A good new version that no longer admits web on the TCP port closes the live tunnel.
    unlinkSync(join(s.policyDir, 'dup.yaml'));
    writeAtomic(file, accessPolicy(httpPort, tcpPort, ['/other/*'], LEGACY));
    await eventually(() => agent.authorizers.current.version !== version);
    assert.equal(await waitClose(live), true, 'live connections are re-checked against the new version');
    assert.equal((await httpsGet(httpPort, '/public/a', svids[WEB]!)).status, 403);
    assert.equal((await httpsGet(httpPort, '/other/a', svids[WEB]!)).status, 200);
  } finally {
    await agent.stop();
  }
});

test('MutualTLSPolicy and the inbound port mode must agree: PERMISSIVE ports need a PERMISSIVE policy, a disagreeing reload is refused', async () => {
  const port = await freePort();
  const permissive = `
apiVersion: ward.dev/v1alpha1
kind: MutualTLSPolicy
metadata: { name: orders-mtls }
spec:
  subject: { spiffeIds: ["${ORDERS}"] }
  mtls: { mode: PERMISSIVE }
`;
  const allowPlain = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: legacy-plaintext }
spec:
  subject: { spiffeIds: ["${ORDERS}"] }
  ingress: [{ from: [{ unauthenticated: true }] }]
`;
  const proxy = { inbound: [{ port, host: '127.0.0.1', protocol: 'tcp', mode: 'PERMISSIVE', appPort: echo.port }] };
  // No MutualTLSPolicy: Ward's default is STRICT, which disagrees with the config.
  const without = setup('mtls-none', ORDERS, { 'allow.yaml': allowPlain }, proxy);
  await assert.rejects(loadSource(without), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_MTLS_MISMATCH' && /port \d+ is PERMISSIVE in the agent config but STRICT/.test(e.message));
  // The other way round: a STRICT port with a PERMISSIVE policy is refused too.
  const strictPort = setup('mtls-strict', ORDERS, { 'mtls.yaml': permissive }, { inbound: [{ ...proxy.inbound[0], mode: 'STRICT' }] });
  await assert.rejects(loadSource(strictPort), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_MTLS_MISMATCH');

  const s = setup('mtls-ok', ORDERS, { 'mtls.yaml': permissive, 'allow.yaml': allowPlain }, proxy);
  const { logger, lines } = captureLogger();
  const agent = await startAgent(s.config, { clock: systemClock, logger });
  try {
    const plain = await plainConnect(port);
    assert.equal((await roundTrip(plain, 'hi', 2)).data, 'hi', 'plaintext admitted as an unauthenticated peer');
    plain.destroy();
    assert.equal(ref(agent.authorizers.current.authorizeConnection(inbound('unauthenticated', port))), 'allow legacy-plaintext/ingress[0]');
    const version = agent.authorizers.current.version;
    writeAtomic(join(s.policyDir, 'mtls.yaml'), permissive.replace('PERMISSIVE', 'STRICT'));
    await eventually(() => lines.some((l) => l.code === 'ERR_AGENT_MTLS_MISMATCH'));
    assert.equal(agent.authorizers.current.version, version);
    const again = await plainConnect(port);
    assert.equal((await roundTrip(again, 'hi', 2)).data, 'hi');
    again.destroy();
  } finally {
    await agent.stop();
  }
});

test('the first load fails with the policy error code when the directory is invalid (nothing to fall back on)', async () => {
  const s = setup('bad-first', ORDERS, { 'a.yaml': 'apiVersion: ward.dev/v1alpha1\nkind: AgentStaticPolicy\nmetadata: { name: p }\nspec: { rules: [] }\n' }, {
    inbound: [{ port: 1, host: '127.0.0.1', appPort: echo.port }],
  });
  await assert.rejects(loadSource(s), (e: unknown) => isWardError(e) && e.code === 'ERR_POLICY_KIND');
});
