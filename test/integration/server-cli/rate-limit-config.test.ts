// `refusalRateLimit` in a `ward server start --config` file reaches the running server: a tight
// bucket from the file turns the third unauthenticated request into 429 (ADR 0077).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { startServerProcess } from '../../helpers/server-process.js';

test('ward server start --config with refusalRateLimit: the file\'s bucket applies', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-rl-'));
  const data = join(dir, 'data');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal((await runCli(['server', 'init', '--data-dir', data, '--trust-domain', 'ward.test', '-o', 'json'])).code, 0);
  writeFileSync(join(dir, 'server.yaml'), 'refusalRateLimit:\n  burst: 2\n  refillPerSecond: 0.01\n');
  const server = await startServerProcess(t, ['--config', join(dir, 'server.yaml'), '--data-dir', data, '--trust-domain', 'ward.test']);
  const { started, child, exited } = server;
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${started.adminUrl}/v1/agents`, { headers: { authorization: 'Bearer ward_adm_forged' } })).status);
  assert.deepEqual(statuses, [401, 401, 429]);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, server.stderr());
});

test('ward server start --config refuses a bad refusalRateLimit value with ERR_CONFIG_INVALID naming the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-rl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'server.yaml'), 'refusalRateLimit:\n  burst: -3\n');
  const r = await runCli(['server', 'start', '--config', join(dir, 'server.yaml'), '--data-dir', join(dir, 'data')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERR_CONFIG_INVALID.*refusalRateLimit\.burst/);
});
