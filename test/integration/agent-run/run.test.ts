// `ward agent run [options] -- <command…>`: the app runs as the agent's child, reaches its
// upstreams through the agent, and its exit code becomes the agent's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa, type TestCa } from '../../unit/agent/support/pki.js';
import { startEchoApp } from '../../unit/agent/support/net.js';
import { wardArgs } from '../../unit/agent/support/process.js';
import { runCli } from '../../helpers/cli.js';

let dir: string;
let ca: TestCa;
let echo: Awaited<ReturnType<typeof startEchoApp>>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ward-run-'));
  ca = createTestCa('run');
  const svid = ca.issue(['spiffe://example.org/legacy']);
  writeFileSync(join(dir, 'svid.pem'), svid.certPem);
  writeFileSync(join(dir, 'key.pem'), svid.keyPem);
  writeFileSync(join(dir, 'bundle.pem'), ca.certPem);
  mkdirSync(join(dir, 'policy'));
  writeFileSync(join(dir, 'policy', 'p.yaml'), 'apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p }\nspec:\n  ingress: [{ from: [{ spiffeIds: ["spiffe://example.org/*"] }] }]\n');
  echo = await startEchoApp();
});

after(async () => {
  await echo.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function runWrapped(childScript: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, wardArgs([
      'agent', 'run', '--svid', join(dir, 'svid.pem'), '--key', join(dir, 'key.pem'), '--bundle', join(dir, 'bundle.pem'),
      '--policy-dir', join(dir, 'policy'), '--admin', 'off', '--log-level', 'warn',
      '--inbound', `port=0,app=${echo.port},host=127.0.0.1`,
      '--', process.execPath, '-e', childScript,
    ]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('the agent exits with the wrapped app\'s exit code', async () => {
  const r = await runWrapped('console.log("app:" + process.env.WARD_AGENT); process.exit(7)');
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /"ready":true/);
  assert.match(r.stdout, /app:1/, 'the app ran after the agent was ready, with WARD_AGENT set');
});

test('a clean app exit ends the agent with 0', async () => {
  const r = await runWrapped('setTimeout(() => {}, 50)');
  assert.equal(r.code, 0, r.stderr);
});

test('an invalid configuration fails before the app starts', async () => {
  const r = await runCli(['agent', 'run', '--svid', join(dir, 'missing.pem'), '--key', 'k', '--bundle', 'b', '--policy-dir', dir, '--inbound', 'port=0,app=1', '--', 'true']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERR_AGENT_TLS_MATERIAL/);
  const bad = await runCli(['agent', '--svid', 's', '--key', 'k', '--bundle', 'b', '--policy-dir', dir, '--inbound', 'port=0,app=1,mode=LAX']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ERR_AGENT_CONFIG: inbound\[0\]\.mode/);
});
