// `refusalRateLimit` in a `ward server start --config` file reaches the running server: a tight
// bucket from the file turns the third unauthenticated request into 429 (ADR 0077).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../../helpers/cli.js';

const MAIN = resolve('src/cli/main.ts');

test('ward server start --config with refusalRateLimit: the file\'s bucket applies', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-rl-'));
  const data = join(dir, 'data');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal((await runCli(['server', 'init', '--data-dir', data, '--trust-domain', 'ward.test', '-o', 'json'])).code, 0);
  writeFileSync(join(dir, 'server.yaml'), 'refusalRateLimit:\n  burst: 2\n  refillPerSecond: 0.01\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `import(${JSON.stringify(MAIN)}).then((m) => m.main(process.argv.slice(1))).then((c) => { process.exitCode = c; })`,
    'server', 'start', '--config', join(dir, 'server.yaml'), '--data-dir', data, '--trust-domain', 'ward.test', '--admin-listen', '127.0.0.1:0', '--agent-listen', '127.0.0.1:0', '--log-level', 'warn', '-o', 'json'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const started = await new Promise<{ adminUrl: string }>((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 30_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      try {
        resolveStart(JSON.parse(out) as { adminUrl: string });
        clearTimeout(timer);
      } catch {
        // not complete yet
      }
    });
    child.on('exit', () => reject(new Error(`server exited: ${err}`)));
  });
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${started.adminUrl}/v1/agents`, { headers: { authorization: 'Bearer ward_adm_forged' } })).status);
  assert.deepEqual(statuses, [401, 401, 429]);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
});

test('ward server start --config refuses a bad refusalRateLimit value with ERR_CONFIG_INVALID naming the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-rl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'server.yaml'), 'refusalRateLimit:\n  burst: -3\n');
  const r = await runCli(['server', 'start', '--config', join(dir, 'server.yaml'), '--data-dir', join(dir, 'data')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERR_CONFIG_INVALID.*refusalRateLimit\.burst/);
});
