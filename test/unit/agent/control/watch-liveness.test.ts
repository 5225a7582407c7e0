// A dead watch stream noticed by the agent itself, not by TCP keepalive: a real `ward server`
// (heartbeat every 200 ms) behind a relay that goes silent without closing anything. The agent
// (control-plane mode, real admin endpoint) keeps a healthy stream open past several idle
// timeouts thanks to the heartbeats; once the relay stalls it drops the stream within its idle
// timeout, keeps enforcing the last policy, reports `/readyz` not ready with the reason, and
// reconnects and resumes (a policy applied afterwards arrives) once the path is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { systemClock } from '../../../../src/core/clock.js';
import { createLogger } from '../../../../src/core/logging.js';
import { parseAgentConfig } from '../../../../src/agent/config.js';
import { startControlledAgent } from '../../../../src/agent/control/agent.js';
import { PolicyAuthorizer } from '../../../../src/agent/policy-authorizer.js';
import { startTestServer } from '../../../integration/server-lifecycle/harness.js';
import { StallProxy, httpGet as get } from './liveness-support.js';
import { ORDERS, PAYMENTS, TD, entry, freePort, paymentsPolicy, trivyClean, waitUntil } from './support.js';

const logger = createLogger({ name: 'test', level: (process.env.WARD_TEST_LOG ?? 'silent') as 'silent' });

test('watch liveness: a silent stream is dropped within the idle timeout, last policy kept, /readyz says why, resumes', { timeout: 60_000 }, async (t) => {
  const IDLE = 1000;
  const ts = await startTestServer('sqlite', { watchHeartbeat: '200ms' });
  t.after(() => ts.cleanup());
  const relay = await StallProxy.start(Number(new URL(ts.server.agentUrl).port));
  t.after(() => relay.close());
  await ts.admin.apply([entry('orders', ORDERS, 'vm-orders', 'orders'), paymentsPolicy]);
  await ts.admin.importScan(trivyClean());
  const jt = await ts.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders' } });

  const proxy = parseAgentConfig({ admin: { listen: '127.0.0.1:0' }, inbound: [{ port: await freePort(), host: '127.0.0.1', appPort: await freePort(), protocol: 'http' }] }, ts.dir, 'control');
  const agent = await startControlledAgent(
    { ...proxy, spool: { dir: join(ts.dir, 'spool'), maxBytes: 1 << 20 } },
    { serverUrl: relay.url, serverBundlePem: ts.server.bundle.join(''), trustDomain: TD, attestor: { attestor: 'join_token', token: jt.token }, service: 'orders', watchIdleTimeoutMs: IDLE, maxBackoffMs: 300 },
    { clock: systemClock, logger },
  );
  t.after(() => agent.stop());
  const admin = agent.ports.admin as number;
  const cp = agent.control;
  assert.equal((await get(admin, '/readyz')).status, 200);

  // Healthy but quiet (no change on the server): heartbeats alone keep the stream for 2.5 idle timeouts.
  await new Promise((r) => setTimeout(r, 2.5 * IDLE));
  assert.equal(cp.status().connected, true);
  assert.equal(cp.status().watchIdleTimeouts, 0, 'heartbeat comments count as activity');
  assert.equal(cp.status().reconnects, 0);

  const policy = agent.authorizers.current;
  assert.ok(policy instanceof PolicyAuthorizer);
  const decision = policy.authorizeConnection({ direction: 'inbound', source: { spiffeId: ORDERS, authenticated: true, attributes: {} }, destination: PAYMENTS, port: 8443 }).allow;

  // The path goes silent: no FIN, no RST, nothing. The agent must notice on its own.
  relay.stall();
  const stalledAt = performance.now();
  const noticed = await waitUntil(() => cp.status().watchIdleTimeouts >= 1 && !cp.status().connected, 10_000, 'the agent drops the silent stream');
  t.diagnostic(`silent stream dropped ${Math.round(noticed)} ms after the stall (idle timeout ${IDLE} ms, heartbeat 200 ms)`);
  assert.ok(noticed < IDLE + 700, `noticed ${Math.round(noticed)} ms after the stall (idle timeout ${IDLE} ms)`);
  assert.equal(agent.authorizers.current, policy, 'fail-static: the last good policy keeps deciding');
  assert.equal(agent.authorizers.current.authorizeConnection({ direction: 'inbound', source: { spiffeId: ORDERS, authenticated: true, attributes: {} }, destination: PAYMENTS, port: 8443 }).allow, decision);
  assert.equal(cp.status().failedClosed, false);
  const ready = await get(admin, '/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.body, /not ready: control_plane_unreachable/);
  // Reconnect attempts meet the same silence (connection accepted, no answer): each is given up too.
  await waitUntil(() => cp.status().watchIdleTimeouts >= 2, 5000, 'a reconnect into the silence is given up as well');
  const metrics = (await get(admin, '/metrics')).body;
  assert.match(metrics, /^ward_agent_control_connected 0$/m);
  assert.match(metrics, /^ward_agent_control_watch_idle_timeouts_total [2-9]\d*$/m);
  assert.ok(performance.now() - stalledAt > IDLE);

  // The path is back: reconnect with the normal backoff, resume from the last version.
  const rv = cp.status().resourceVersion ?? 0;
  relay.resume();
  await waitUntil(() => cp.status().connected, 5000, 'the watch reconnects');
  assert.equal((await get(admin, '/readyz')).status, 200);
  assert.ok(cp.status().reconnects >= 1);
  await ts.admin.apply([{ ...paymentsPolicy, spec: { ...paymentsPolicy.spec, ingress: [] } }]);
  await waitUntil(() => (cp.status().resourceVersion ?? 0) > rv && agent.authorizers.current !== policy, 3000, 'a policy applied after the outage reaches the agent');
});
