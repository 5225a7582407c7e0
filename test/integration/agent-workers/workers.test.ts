// `workers: 2`: two agent processes share the listening port through node:cluster; the primary
// serves aggregated metrics and readiness, and a stop ends every worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, createServer } from 'node:http';
import { createTestCa } from '../../unit/agent/support/pki.js';
import { startEchoApp, mtlsConnect, roundTrip } from '../../unit/agent/support/net.js';
import { startAgentProcess } from '../../unit/agent/support/process.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

test('two workers share the port; the primary aggregates metrics; stop ends them all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-workers-'));
  const ca = createTestCa('workers');
  const echo = await startEchoApp();
  const svid = ca.issue(['spiffe://example.org/orders']);
  const web = ca.issue(['spiffe://example.org/web']);
  writeFileSync(join(dir, 'svid.pem'), svid.certPem);
  writeFileSync(join(dir, 'key.pem'), svid.keyPem);
  writeFileSync(join(dir, 'bundle.pem'), ca.certPem);
  mkdirSync(join(dir, 'policy'));
  writeFileSync(join(dir, 'policy', 'p.yaml'), 'apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p }\nspec:\n  subject: { spiffeIds: ["spiffe://example.org/orders"] }\n  ingress: [{ from: [{ spiffeIds: ["spiffe://example.org/web"] }] }]\n');
  const port = await freePort();
  const admin = await freePort();
  const agent = await startAgentProcess(['agent', '--svid', join(dir, 'svid.pem'), '--key', join(dir, 'key.pem'), '--bundle', join(dir, 'bundle.pem'),
    '--policy-dir', join(dir, 'policy'), '--inbound', `port=${port},app=${echo.port},host=127.0.0.1`, '--admin', `127.0.0.1:${admin}`, '--workers', '2', '--log-level', 'warn'], 40_000);
  try {
    assert.equal(agent.ready.workers, 2);
    for (let i = 0; i < 20; i++) {
      const s = await mtlsConnect(port, web, ca.certPem);
      assert.equal((await roundTrip(s, `m${i}`, `m${i}`.length)).data, `m${i}`);
      s.destroy();
    }
    assert.equal((await get(admin, '/readyz')).status, 200);
    const metrics = (await get(admin, '/metrics')).body;
    const allowed = Number(/ward_agent_connections_total\{direction="inbound",verdict="allowed"\} (\d+)/.exec(metrics)?.[1]);
    assert.equal(allowed, 20, 'the primary sums both workers');
    const children = readFileSync(`/proc/${agent.child.pid}/task/${agent.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    assert.equal(children.length, 2);
  } finally {
    assert.equal(await agent.stop(), 0, agent.stderr());
    await echo.close();
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
