// The mesh with a control plane, every Ward part a real process: `ward server start` (SQLite in a
// temp dir), and two `ward agent --server … --join-token …` children, web → orders, where orders
// fronts an HTTP app and a TCP echo app (both in this process). Join tokens and registration
// entries come from the CLI (`ward token create`, `ward apply`), against the running server.
// It proves, in order:
//   1. L7: an allowed call reaches the app with the verified caller identity (XFCC); a denied one
//      gets 403 ERR_AGENT_REQUEST_DENIED. L4: an allowed tunnel echoes; a port no rule allows is
//      closed without a byte.
//   2. `ward apply` of a narrower policy applies live: the next request on a kept-alive connection
//      is denied, the live L4 tunnel the policy no longer allows is closed; no process restarts.
//   3. Workload SVIDs (1-minute TTL, the server's minimum) renew under continuous traffic with zero
//      failed requests; orders presents a new serial and web a new client certificate.
//   4. SIGKILL of the server: traffic keeps working (fail-static) and events wait in the agents'
//      spools; the server restarted on the same store and ports receives them, and every request
//      made during the outage is stored exactly once, each agent's sequence numbers without gaps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecords, type SpoolRecord } from '../../../src/agent/spool/record.js';
import { openStore } from '../../../src/store/index.js';
import { runCli } from '../../helpers/cli.js';
import { startEchoApp, startHttpApp, plainConnect, roundTrip, waitClose } from '../../unit/agent/support/net.js';
import { startAgentProcess, type AgentProcess } from '../../unit/agent/support/process.js';
import { entry, freePort } from '../../unit/agent/control/support.js';
import { eventually, get, metric, presentedSerial, startServerProcess, type ServerProcess } from './harness.js';

const TD = 'ward.test';
const WEB = `spiffe://${TD}/shop/web`;
const ORDERS = `spiffe://${TD}/shop/orders`;

/** orders admits web: GET on `paths` at the HTTP port, and (when given) anything on the TCP port. */
function ordersPolicy(httpPort: number, paths: string[], tcpPort?: number): string {
  const from = [{ spiffeIds: [WEB] }];
  const ingress: unknown[] = [{ from, to: [{ ports: [httpPort], methods: ['GET'], paths }] }];
  if (tcpPort !== undefined) ingress.push({ from, to: [{ ports: [tcpPort] }] });
  return JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'orders-api' }, spec: { subject: { spiffeIds: [ORDERS] }, action: 'ALLOW', ingress } });
}

/** The records in an agent's spool segments (`seg-<first seq>.wsp`), as they are on disk. */
function spoolRecords(spoolDir: string): SpoolRecord[] {
  return readdirSync(spoolDir).filter((f) => f.endsWith('.wsp')).flatMap((f) => decodeRecords(readFileSync(join(spoolDir, f))).records);
}

interface Ready { agentId: string; ports: { inbound: number[]; outbound: number[]; admin: number } }
const readyOf = (a: AgentProcess): Ready => a.ready as unknown as Ready;

test('mesh with a control plane, all real processes: L4/L7, live policy, rotation under traffic, server outage', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-cp-mesh-'));
  const data = join(dir, 'data');
  const children: AgentProcess[] = [];
  const httpApp = await startHttpApp();
  const echoApp = await startEchoApp();
  let server: ServerProcess | undefined;
  t.after(async () => {
    // WARD_MESH_DEBUG=info|debug: agents log at that level, and their logs and metrics are printed at the end.
    if (process.env['WARD_MESH_DEBUG'] !== undefined) {
      for (const c of children) {
        const m = await get(readyOf(c).ports.admin, '/metrics').catch(() => ({ body: '' }));
        process.stderr.write(`--- ${c.stderr()}\n${m.body.split('\n').filter((l) => /^ward_agent_(conn|tls|http_requests)/.test(l)).join('\n')}\n`);
      }
    }
    await server?.stop('SIGKILL');
    await Promise.all(children.map((c) => c.stop()));
    await httpApp.close();
    await echoApp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // --- server: init in-process (prints the admin token once), start as a child process ---
  const init = await runCli(['server', 'init', '--data-dir', data, '--trust-domain', TD, '-o', 'json']);
  assert.equal(init.code, 0, init.stderr);
  const { adminToken } = JSON.parse(init.stdout) as { adminToken: string };
  const bundle = join(data, 'bundle.pem');
  const bundlePem = readFileSync(bundle, 'utf8');
  const [adminPort, agentApiPort, httpPort, tcpPort, closedTcpPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  writeFileSync(join(dir, 'server.yaml'), 'svidTtl: 1m\nwatchHeartbeat: 5s\n');
  const serverArgs = ['--data-dir', data, '--trust-domain', TD, '--config', join(dir, 'server.yaml'),
    '--admin-listen', `127.0.0.1:${adminPort}`, '--agent-listen', `127.0.0.1:${agentApiPort}`, '--log-level', 'warn'];
  server = await startServerProcess(serverArgs);
  const env = { WARD_SERVER: server.adminUrl, WARD_TOKEN: adminToken, WARD_CONFIG: join(dir, 'no-cli.yaml') };
  const cli = async (...args: string[]): Promise<string> => {
    const r = await runCli(args, { env });
    assert.equal(r.code, 0, `ward ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  // Workload SVIDs live 1 minute (the server's minimum), so they renew about every 30 s.
  writeFileSync(join(dir, 'entries.yaml'), [entry('web', WEB, 'vm-web', 'web', '1m'), entry('orders', ORDERS, 'vm-orders', 'orders', '1m')].map((d) => JSON.stringify(d)).join('\n---\n'));
  writeFileSync(join(dir, 'policy.json'), ordersPolicy(httpPort, ['/public/*'], tcpPort));
  await cli('apply', '-f', join(dir, 'entries.yaml'), '-f', join(dir, 'policy.json'));
  const token = async (host: string): Promise<string> => (JSON.parse(await cli('token', 'create', '--attribute', `host.name=${host}`, '-o', 'json')) as { token: string }).token;
  const [ordersToken, webToken] = [await token('vm-orders'), await token('vm-web')];

  // --- agents: real `ward agent` processes in control-plane mode ---
  const common = ['--server', `https://127.0.0.1:${agentApiPort}`, '--server-bundle', bundle, '--admin', '127.0.0.1:0', '--log-level', process.env['WARD_MESH_DEBUG'] ?? 'warn'];
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
  const pids = [orders.child.pid, web.child.pid];

  await t.test('1. L7 allowed (caller identity verified) and denied; L4 allowed and denied', async () => {
    const ok = await get(webHttp, '/public/items');
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.body, 'ok /public/items');
    const xfcc = String(httpApp.seen.at(-1)?.headers['x-forwarded-client-cert']);
    assert.match(xfcc, new RegExp(`^By=${ORDERS};Hash=[0-9a-f]{64};URI=${WEB}$`));
    const denied = await get(webHttp, '/admin');
    assert.equal(denied.status, 403);
    assert.equal(denied.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');
    assert.equal(httpApp.seen.filter((r) => r.url === '/admin').length, 0, 'a denied request never reaches the app');

    const tunnel = await plainConnect(webTcp);
    assert.deepEqual(await roundTrip(tunnel, 'ping', 4, 10_000), { data: 'ping', closed: false });
    tunnel.destroy();
    const refused = await plainConnect(webClosedTcp);
    assert.deepEqual(await roundTrip(refused, 'ping', 4, 10_000), { data: '', closed: true }, 'no rule allows the second TCP port');
  });

  await t.test('2. `ward apply` of a narrower policy applies live: next request denied, live L4 tunnel closed', async () => {
    const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const tunnel = await plainConnect(webTcp);
    try {
      assert.equal((await get(webHttp, '/public/a', keepAlive)).status, 200);
      assert.deepEqual(await roundTrip(tunnel, 'live', 4, 10_000), { data: 'live', closed: false });
      writeFileSync(join(dir, 'policy.json'), ordersPolicy(httpPort, ['/v2/*']));
      assert.match(await cli('apply', '-f', join(dir, 'policy.json')), /accesspolicy\/orders-api (configured|updated)/);
      const ms = await eventually('the kept-alive connection is denied /public', async () => (await get(webHttp, '/public/a', keepAlive)).status === 403);
      t.diagnostic(`policy applied on the live connection after ${Math.round(ms)} ms`);
      assert.equal(await waitClose(tunnel, 10_000), true, 'the live tunnel to the TCP port is closed');
      assert.equal((await get(webHttp, '/v2/x')).status, 200);
      const again = await plainConnect(webTcp);
      assert.deepEqual(await roundTrip(again, 'ping', 4, 10_000), { data: '', closed: true }, 'a new tunnel is refused too');
      assert.deepEqual([orders.child.exitCode, web.child.exitCode, orders.child.pid, web.child.pid], [null, null, ...pids], 'nothing restarted');
    } finally {
      keepAlive.destroy();
      tunnel.destroy();
    }
  });

  await t.test('3. SVID rotation under traffic: zero failures, new serial and client certificate presented', async () => {
    const ordersSerial0 = await presentedSerial(httpPort, bundlePem);
    assert.match(ordersSerial0, /^[0-9A-F]{16,}$/);
    const hashOf = (i: number): string => /Hash=([0-9a-f]+)/.exec(String(httpApp.seen[i]?.headers['x-forwarded-client-cert']))?.[1] ?? '';
    const webHash0 = hashOf(httpApp.seen.length - 1);
    let failures = 0;
    let done = 0;
    let stop = false;
    const errors: string[] = [];
    const workers = Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          const r = await get(webHttp, `/v2/rot-${w}-${i}`);
          if (r.status !== 200) {
            failures += 1;
            errors.push(`${r.status} ${r.body}`);
          }
        } catch (error) {
          failures += 1;
          errors.push((error as Error).message);
        }
        done += 1;
      }
    });
    try {
      const ms = await eventually('orders presents a renewed SVID and web a renewed client certificate', async () =>
        (await presentedSerial(httpPort, bundlePem)) !== ordersSerial0 && hashOf(httpApp.seen.length - 1) !== webHash0, 75_000);
      t.diagnostic(`both SVIDs renewed ${Math.round(ms / 1000)} s into the traffic`);
      const mark = done;
      await eventually('20 more requests after the renewal', () => done >= mark + 20, 30_000);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    t.diagnostic(`${done} requests during rotation`);
    assert.equal(failures, 0, `${failures} of ${done} requests failed: ${errors.slice(0, 5).join('; ')}`);
    assert.ok(done >= 40);
  });

  await t.test('4. server SIGKILLed: traffic continues, events spool; restarted, each outage request stored once', async () => {
    const ordersAdmin = readyOf(orders).ports.admin;
    const webAdmin = readyOf(web).ports.admin;
    await eventually('the spools are drained before the outage', async () => (await metric(ordersAdmin, 'ward_agent_spool_pending_events')) === 0, 30_000);
    const killed = await server?.stop('SIGKILL');
    assert.equal(killed, 'SIGKILL');
    server = undefined;
    const outagePaths: string[] = [];
    for (let i = 0; i < 25; i++) {
      const path = `/v2/outage-${i}`;
      const r = await get(webHttp, path);
      assert.equal(r.status, 200, `fail-static: ${path} answered ${r.status} ${r.body}`);
      outagePaths.push(path);
    }
    assert.equal((await get(webHttp, '/public/a')).status, 403, 'the last policy stays in force');
    await eventually('the outage requests wait in the orders spool', async () => (await metric(ordersAdmin, 'ward_agent_spool_pending_events')) >= outagePaths.length, 10_000);
    await eventually('every outage request is in a spool segment on disk', () => {
      const onDisk = new Set(spoolRecords(join(dir, 'spool-orders')).map((r) => (r.event as { path?: string }).path));
      return outagePaths.every((p) => onDisk.has(p));
    }, 10_000);
    assert.ok((await metric(webAdmin, 'ward_agent_spool_pending_events')) > 0, 'web spools its flow events too');

    server = await startServerProcess(serverArgs);
    const ms = await eventually('both spools replayed to the restarted server', async () =>
      (await metric(ordersAdmin, 'ward_agent_spool_pending_events')) === 0 && (await metric(webAdmin, 'ward_agent_spool_pending_events')) === 0, 60_000);
    t.diagnostic(`spools drained ${Math.round(ms)} ms after the server restart`);
    assert.equal((await get(webHttp, '/v2/after')).status, 200);

    // Stop the server, then read what it stored (no admin API lists events yet).
    assert.equal(await server.stop('SIGTERM'), 0, server.stderr());
    server = undefined;
    const store = await openStore(`sqlite:${join(data, 'ward.db')}`);
    try {
      for (const a of [orders, web]) {
        const seqs = (await store.events.list({ agentId: readyOf(a).agentId, limit: 10_000 })).map((e) => e.seq).sort((x, y) => x - y);
        assert.ok(seqs.length > outagePaths.length);
        assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `${readyOf(a).agentId}: contiguous from 1, each once`);
      }
      const requests = (await store.events.list({ agentId: readyOf(orders).agentId, classUid: 4002, limit: 10_000 }))
        .map((e) => (e.event as { http_request?: { url?: { path?: string } } }).http_request?.url?.path ?? '');
      for (const path of outagePaths) assert.equal(requests.filter((p) => p === path).length, 1, `${path} stored exactly once`);
    } finally {
      await store.close();
    }
  });
});
