// Policies scoped per agent (ADR 0076) with real processes: `ward server start` and two
// `ward agent` children, web → orders. orders' allow-list names web, so both agents hold it (web's
// agent refuses early what it does not admit, ADR 0070); orders' DENY of one port names no caller,
// so only orders' agent holds it: that refusal is made, and counted, at orders' agent. Traffic is
// allowed and denied exactly as the rules say, also after live changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { startEchoApp, startHttpApp, plainConnect, roundTrip } from '../../unit/agent/support/net.js';
import { startAgentProcess, type AgentProcess } from '../../unit/agent/support/process.js';
import { entry, freePort } from '../../unit/agent/control/support.js';
import { eventually, get, startServerProcess, type ServerProcess } from './harness.js';

const TD = 'ward.test';
const WEB = `spiffe://${TD}/shop/web`;
const ORDERS = `spiffe://${TD}/shop/orders`;

interface Ready { ports: { inbound: number[]; outbound: number[]; admin: number } }
const readyOf = (a: AgentProcess): Ready => a.ready as unknown as Ready;

/** `ward_agent_connections_total{direction,verdict}` from an agent's admin port (0 when absent). */
async function connections(adminPort: number, direction: 'inbound' | 'outbound', verdict: 'allowed' | 'denied'): Promise<number> {
  const text = (await get(adminPort, '/metrics')).body;
  const m = new RegExp(`^ward_agent_connections_total\\{direction="${direction}",verdict="${verdict}"\\} (\\d+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

function policy(name: string, subject: string, ingress: unknown[], action: 'ALLOW' | 'DENY' = 'ALLOW'): string {
  return JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name }, spec: { subject: { spiffeIds: [subject] }, action, ingress } });
}

test('scoped policies with real agents: each side decides on its own rules, allow and deny unchanged', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-cp-scope-'));
  const data = join(dir, 'data');
  const children: AgentProcess[] = [];
  const httpApp = await startHttpApp();
  const echoApp = await startEchoApp();
  const running: { server?: ServerProcess } = {};
  t.after(async () => {
    await running.server?.stop('SIGKILL');
    await Promise.all(children.map((c) => c.stop()));
    await httpApp.close();
    await echoApp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const init = await runCli(['server', 'init', '--data-dir', data, '--trust-domain', TD, '-o', 'json']);
  assert.equal(init.code, 0, init.stderr);
  const { adminToken } = JSON.parse(init.stdout) as { adminToken: string };
  const bundle = join(data, 'bundle.pem');
  const [adminPort, agentApiPort, httpPort, tcpPort, closedTcpPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const server = (running.server = await startServerProcess(['--data-dir', data, '--trust-domain', TD, '--admin-listen', `127.0.0.1:${adminPort}`, '--agent-listen', `127.0.0.1:${agentApiPort}`, '--log-level', 'warn']));
  const env = { WARD_SERVER: server.adminUrl, WARD_TOKEN: adminToken, WARD_CONFIG: join(dir, 'no-cli.yaml') };
  const cli = async (...args: string[]): Promise<string> => {
    const r = await runCli(args, { env });
    assert.equal(r.code, 0, `ward ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  // orders admits web: GET /public/* on the HTTP port, anything on both TCP ports; a DENY policy
  // of orders (any caller) closes the second TCP port. web's own ingress policy (from orders) goes
  // to web's agent alone.
  const from = [{ spiffeIds: [WEB] }];
  writeFileSync(join(dir, 'entries.yaml'), [entry('web', WEB, 'vm-web', 'web'), entry('orders', ORDERS, 'vm-orders', 'orders')].map((d) => JSON.stringify(d)).join('\n---\n'));
  writeFileSync(join(dir, 'orders.json'), policy('orders-api', ORDERS, [{ from, to: [{ ports: [httpPort], methods: ['GET'], paths: ['/public/*'] }] }, { from, to: [{ ports: [tcpPort, closedTcpPort] }] }]));
  writeFileSync(join(dir, 'orders-deny.json'), policy('orders-closed-port', ORDERS, [{ to: [{ ports: [closedTcpPort] }] }], 'DENY'));
  writeFileSync(join(dir, 'web.json'), policy('web-in', WEB, [{ from: [{ spiffeIds: [ORDERS] }] }]));
  await cli('apply', '-f', join(dir, 'entries.yaml'), '-f', join(dir, 'orders.json'), '-f', join(dir, 'orders-deny.json'), '-f', join(dir, 'web.json'));
  const token = async (host: string): Promise<string> => (JSON.parse(await cli('token', 'create', '--attribute', `host.name=${host}`, '-o', 'json')) as { token: string }).token;
  const [ordersToken, webToken] = [await token('vm-orders'), await token('vm-web')];

  const common = ['--server', `https://127.0.0.1:${agentApiPort}`, '--server-bundle', bundle, '--admin', '127.0.0.1:0', '--log-level', 'warn'];
  const orders = await startAgentProcess(['agent', ...common, '--join-token', ordersToken, '--service', 'orders', '--spool-dir', join(dir, 'spool-orders'),
    '--inbound', `port=${httpPort},host=127.0.0.1,app=${httpApp.port},protocol=http`,
    '--inbound', `port=${tcpPort},host=127.0.0.1,app=${echoApp.port},protocol=tcp`,
    '--inbound', `port=${closedTcpPort},host=127.0.0.1,app=${echoApp.port},protocol=tcp`], 60_000);
  children.push(orders);
  const web = await startAgentProcess(['agent', ...common, '--join-token', webToken, '--service', 'web', '--spool-dir', join(dir, 'spool-web'),
    '--outbound', `name=orders,listen=0,address=127.0.0.1:${httpPort},id=${ORDERS}`,
    '--outbound', `name=orders-tcp,listen=0,address=127.0.0.1:${tcpPort},id=${ORDERS}`,
    '--outbound', `name=orders-closed,listen=0,address=127.0.0.1:${closedTcpPort},id=${ORDERS}`], 60_000);
  children.push(web);
  const [webHttp, webTcp, webClosedTcp] = readyOf(web).ports.outbound as [number, number, number];
  const [webAdmin, ordersAdmin] = [readyOf(web).ports.admin, readyOf(orders).ports.admin];

  // L7: allowed and denied by orders' rules.
  const ok = await get(webHttp, '/public/items');
  assert.equal(ok.status, 200, ok.body);
  const denied = await get(webHttp, '/admin');
  assert.equal(denied.status, 403);
  assert.equal(denied.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');

  // L4: the allowed port echoes, the denied one is closed without a byte.
  const tunnel = await plainConnect(webTcp);
  assert.deepEqual(await roundTrip(tunnel, 'ping', 4, 10_000), { data: 'ping', closed: false });
  tunnel.destroy();
  const refused = await plainConnect(webClosedTcp);
  assert.deepEqual(await roundTrip(refused, 'ping', 4, 10_000), { data: '', closed: true }, 'orders denies the second TCP port');

  // Who refused: orders' agent, on its inbound side. web's agent was never sent orders' DENY
  // policy (it names no caller), so it denied nothing outbound; before ADR 0076 every agent had
  // it and web's agent refused the port itself.
  await eventually('orders counts the refused connection', async () => (await connections(ordersAdmin, 'inbound', 'denied')) >= 1);
  assert.equal(await connections(webAdmin, 'outbound', 'denied'), 0, 'web decided nothing on a rule of orders\' it does not hold');
  assert.ok(await connections(webAdmin, 'outbound', 'allowed') >= 3);

  // A live change of orders' allow-list (it names web, so web's agent holds it too): the TCP port
  // is no longer admitted, and web's agent now refuses it before any byte leaves (ADR 0070); the
  // HTTP paths narrow to /public/items, decided per request at orders.
  writeFileSync(join(dir, 'orders.json'), policy('orders-api', ORDERS, [{ from, to: [{ ports: [httpPort], methods: ['GET'], paths: ['/public/items'] }] }]));
  await cli('apply', '-f', join(dir, 'orders.json'));
  await eventually('the narrower policy applies', async () => (await get(webHttp, '/public/other')).status === 403);
  assert.equal((await get(webHttp, '/public/items')).status, 200);
  const stillRefused = await plainConnect(webTcp);
  assert.deepEqual(await roundTrip(stillRefused, 'ping', 4, 10_000), { data: '', closed: true }, 'the TCP port is no longer allowed');
  await eventually('web refuses it itself', async () => (await connections(webAdmin, 'outbound', 'denied')) >= 1);
});
