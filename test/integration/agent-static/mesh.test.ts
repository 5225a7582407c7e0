// Two apps, two agents in static mode as real processes (the mesh topology):
//   client → web's agent (outbound, plaintext loopback) → mTLS → orders' agent (inbound) → orders app.
// Ward policies in each agent's policy directory (ADR 0045). Allowed and denied calls at L4 and
// L7 with the engine's references in the events, a live policy change, an SVID rotation under traffic
// with zero failed requests, the event spool replaying after a sink outage, and the admin port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, Agent } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createTestCa, type TestCa, type TestSvid } from '../../unit/agent/support/pki.js';
import { startEchoApp, startHttpApp, plainConnect, roundTrip, httpGet } from '../../unit/agent/support/net.js';
import { startAgentProcess, type AgentProcess } from '../../unit/agent/support/process.js';

const TD = 'spiffe://example.org';
let dir: string;
let ca: TestCa;
let ordersSvid: TestSvid;
let webSvid: TestSvid;
let httpApp: Awaited<ReturnType<typeof startHttpApp>>;
let echoApp: Awaited<ReturnType<typeof startEchoApp>>;
let ordersAgent: AgentProcess;
let webAgent: AgentProcess;
let sink: Server;
let sinkUp = false;
const received: number[] = [];
const receivedEvents: Record<string, unknown>[] = [];

// Ward policies (docs/reference/policy.md), the same documents `ward policy validate` accepts.
const ordersPolicy = (allowedPaths: string[]): string => `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-api }
spec:
  subject: { spiffeIds: ["${TD}/orders"] }
  ingress:
    - from: [{ spiffeIds: ["${TD}/web"] }]
      to: [{ ports: [ORDERS_HTTP], methods: [GET], paths: ${JSON.stringify(allowedPaths)} }]
    - from: [{ spiffeIds: ["${TD}/web"] }]
      to: [{ ports: [ORDERS_TCP] }]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-no-secrets }
spec:
  subject: { spiffeIds: ["${TD}/orders"] }
  action: DENY
  ingress:
    - to: [{ ports: [ORDERS_HTTP], paths: ["/public/secret*"] }]
`;

function writeFileAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function get(port: number, path: string, agent: Agent | false = false): Promise<{ status: number; body: string }> {
  return httpGet(port, path, agent, 5000);
}

async function eventually(check: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

let ordersHttpPort = 0;
let ordersTcpPort = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ward-mesh-'));
  ca = createTestCa('mesh');
  ordersSvid = ca.issue([`${TD}/orders`]);
  webSvid = ca.issue([`${TD}/web`]);
  httpApp = await startHttpApp();
  echoApp = await startEchoApp();
  sink = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (!sinkUp) {
        res.writeHead(503).end();
        return;
      }
      const batch = JSON.parse(body) as { events: { seq: number; event: Record<string, unknown> }[] };
      for (const e of batch.events) {
        received.push(e.seq);
        receivedEvents.push(e.event);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  for (const name of ['orders', 'web']) mkdirSync(join(dir, name, 'policy'), { recursive: true });
  writeFileSync(join(dir, 'bundle.pem'), ca.certPem);
  writeFileSync(join(dir, 'orders', 'svid.pem'), ordersSvid.certPem);
  writeFileSync(join(dir, 'orders', 'key.pem'), ordersSvid.keyPem);
  writeFileSync(join(dir, 'web', 'svid.pem'), webSvid.certPem);
  writeFileSync(join(dir, 'web', 'key.pem'), webSvid.keyPem);
  // Pick the inbound ports up front (bind 0, read, release) so the policy can name them.
  const free = async (): Promise<number> => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    return p;
  };
  ordersHttpPort = await free();
  ordersTcpPort = await free();
  const policyText = (paths: string[]): string => ordersPolicy(paths).replaceAll('ORDERS_HTTP', String(ordersHttpPort)).replace('ORDERS_TCP', String(ordersTcpPort));
  writeFileSync(join(dir, 'orders', 'policy', 'api.yaml'), policyText(['/public/*']));
  writeFileSync(join(dir, 'orders', 'agent.yaml'), `
identity: { svid: svid.pem, key: key.pem, bundle: ../bundle.pem }
policyDir: policy
inbound:
  - { port: ${ordersHttpPort}, host: 127.0.0.1, protocol: http, appPort: ${httpApp.port} }
  - { port: ${ordersTcpPort}, host: 127.0.0.1, protocol: tcp, appPort: ${echoApp.port} }
admin: { listen: "127.0.0.1:0" }
events: { spoolDir: spool, sinkUrl: "http://127.0.0.1:${(sink.address() as { port: number }).port}/events", agentId: orders-1 }
reloadInterval: 100ms
logLevel: warn
`);
  writeFileSync(join(dir, 'web', 'policy', 'egress.yaml'), `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: web-egress }
spec:
  subject: { spiffeIds: ["${TD}/web"] }
  egress:
    - to: [{ spiffeIds: ["${TD}/orders"] }]
      operations: [{ ports: [${ordersHttpPort}, ${ordersTcpPort}] }]
`);
  ordersAgent = await startAgentProcess(['agent', '--config', join(dir, 'orders', 'agent.yaml')]);
  webAgent = await startAgentProcess([
    'agent', '--svid', join(dir, 'web', 'svid.pem'), '--key', join(dir, 'web', 'key.pem'), '--bundle', join(dir, 'bundle.pem'),
    '--policy-dir', join(dir, 'web', 'policy'), '--admin', 'off', '--reload-interval', '100ms', '--log-level', 'warn',
    '--outbound', `name=orders,listen=0,address=127.0.0.1:${ordersHttpPort},id=${TD}/orders`,
    '--outbound', `name=orders-tcp,listen=0,address=127.0.0.1:${ordersTcpPort},id=${TD}/orders`,
  ]);
  (globalThis as Record<string, unknown>).policyText = policyText;
});

after(async () => {
  await Promise.all([webAgent?.stop(), ordersAgent?.stop()]);
  await httpApp.close();
  await echoApp.close();
  await new Promise((r) => sink.close(r));
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const webOut = (): number => webAgent.ready.ports?.outbound[0] as number;
const webOutTcp = (): number => webAgent.ready.ports?.outbound[1] as number;

test('L7: allowed and denied calls through both agents; the app sees the caller identity', async () => {
  const ok = await get(webOut(), '/public/items');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'ok /public/items');
  assert.match(String(httpApp.seen.at(-1)?.headers['x-forwarded-client-cert']), new RegExp(`URI=${TD}/web$`));
  const denied = await get(webOut(), '/admin');
  assert.equal(denied.status, 403);
  assert.equal(denied.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');
  // A DENY rule on a path wins over the ALLOW; the event names it (checked once the sink is up).
  const secret = await get(webOut(), '/public/secret-plans');
  assert.equal(secret.status, 403);
  assert.equal(secret.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');
});

test('L4: an allowed tunnel echoes; a caller without an allowing rule is refused', async () => {
  const s = await plainConnect(webOutTcp());
  assert.equal((await roundTrip(s, 'ping', 4)).data, 'ping');
  s.destroy();
  // The orders agent itself (a valid SVID, but not web) is not allowed on the TCP port.
  const direct = await new Promise<TLSSocket>((resolve, reject) => {
    const t = tlsConnect({ host: '127.0.0.1', port: ordersTcpPort, cert: ordersSvid.certPem, key: ordersSvid.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined });
    t.once('secureConnect', () => resolve(t));
    t.once('error', reject);
  });
  const r = await roundTrip(direct, 'ping', 4);
  assert.equal(r.data, '');
  assert.equal(r.closed, true);
});

test('a policy file change applies live: the next request is denied without a restart', async () => {
  const policyText = (globalThis as Record<string, unknown>).policyText as (p: string[]) => string;
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal((await get(webOut(), '/public/a', keepAlive)).status, 200);
    writeFileAtomic(join(dir, 'orders', 'policy', 'api.yaml'), policyText(['/other/*']));
    await eventually(async () => (await get(webOut(), '/public/a', keepAlive)).status === 403);
    assert.equal((await get(webOut(), '/other/x')).status, 200);
    writeFileAtomic(join(dir, 'orders', 'policy', 'api.yaml'), 'apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: "BAD NAME" }\nspec: { ingress: [] }\n');
    await eventually(() => ordersAgent.stderr().includes('"code":"ERR_POLICY_VALUE"'), 4000);
    assert.equal((await get(webOut(), '/other/x')).status, 200, 'an invalid policy is refused; the last good one stays');
    writeFileAtomic(join(dir, 'orders', 'policy', 'api.yaml'), policyText(['/public/*']));
    await eventually(async () => (await get(webOut(), '/public/a')).status === 200);
  } finally {
    keepAlive.destroy();
  }
});

test('SVID rotation under traffic: zero failed requests, and new handshakes present the new SVID', async () => {
  const next = ca.issue([`${TD}/orders`]);
  let failures = 0;
  let done = 0;
  let stop = false;
  const workers = Array.from({ length: 4 }, async () => {
    while (!stop) {
      try {
        const r = await get(webOut(), '/public/rot');
        if (r.status !== 200) failures += 1;
      } catch {
        failures += 1;
      }
      done += 1;
    }
  });
  await eventually(() => done >= 20);
  // Key first would mismatch the old cert: the reloader refuses the pair until both are new.
  writeFileAtomic(join(dir, 'orders', 'key.pem'), next.keyPem);
  writeFileAtomic(join(dir, 'orders', 'svid.pem'), next.certPem);
  const serialNow = (): Promise<string> => new Promise((resolve, reject) => {
    const t = tlsConnect({ host: '127.0.0.1', port: ordersHttpPort, cert: webSvid.certPem, key: webSvid.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined });
    t.once('secureConnect', () => {
      resolve(t.getPeerX509Certificate()?.serialNumber.replace(/^0+/, '') ?? '');
      t.destroy();
    });
    t.once('error', reject);
  });
  await eventually(async () => (await serialNow()) === next.serial.replace(/^0+/, ''));
  const after = done;
  await eventually(() => done >= after + 20);
  stop = true;
  await Promise.all(workers);
  assert.equal(failures, 0, `${failures} of ${done} requests failed during rotation`);
});

test('events are spooled while the sink is down and replayed in order, none lost or repeated', async () => {
  // The sink has answered 503 so far: everything is still in the spool.
  const metricsText = async (): Promise<string> => (await get(ordersAgent.ready.ports?.admin as number, '/metrics')).body;
  const pending = Number(/ward_agent_spool_pending_events (\d+)/.exec(await metricsText())?.[1]);
  assert.ok(pending > 0, 'events are pending while the sink is down');
  sinkUp = true;
  await eventually(async () => /ward_agent_spool_pending_events 0\b/.test(await metricsText()), 15_000);
  assert.deepEqual(received, Array.from({ length: received.length }, (_, i) => i + 1), 'contiguous from 1, each once');
  assert.ok(received.length >= pending);
  // Decisions carry the policy engine's references.
  const http = receivedEvents.filter((e) => e.class === 'http_activity');
  const ref = (path: string): unknown => http.find((e) => e.path === path)?.policy;
  assert.equal(ref('/public/items'), 'orders-api/ingress[0]');
  assert.equal(ref('/admin'), 'default-deny');
  assert.equal(ref('/public/secret-plans'), 'orders-no-secrets/ingress[0]');
  assert.equal(http.find((e) => e.path === '/public/secret-plans')?.status, 403);
  // Every HTTP event reaches the sink with its route template.
  assert.ok(http.length > 0 && http.every((e) => typeof e.pathTemplate === 'string'));
  assert.equal(http.find((e) => e.path === '/public/items')?.pathTemplate, '/public/items');
});

test('the admin port serves /healthz, /readyz and Prometheus metrics on loopback', async () => {
  const admin = ordersAgent.ready.ports?.admin as number;
  assert.equal((await get(admin, '/healthz')).status, 200);
  assert.equal((await get(admin, '/readyz')).status, 200);
  const m = (await get(admin, '/metrics')).body;
  for (const name of ['ward_agent_connections_total', 'ward_agent_http_requests_total', 'ward_agent_policy_reloads_total', 'ward_agent_spool_sent_events_total']) {
    assert.ok(m.includes(`# TYPE ${name}`), name);
  }
  assert.match(m, /ward_agent_http_requests_total\{verdict="denied"\} [1-9]/);
});
