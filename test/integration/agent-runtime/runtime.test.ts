// The agent's lean runtime (ADR 0073) with real processes: `ward agent` restarts itself in place
// (same PID, stdout pipe and signals still working) with the lean node flags and malloc setting;
// `--runtime default` does not; `ward agent run` gives the app an environment without what the
// restart added and exits with the app's code. Plus the addon's execve refusing bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createTestCa, type TestCa } from '../../unit/agent/support/pki.js';
import { startAgentProcess, wardArgs } from '../../unit/agent/support/process.js';
import { loadRelayAddon } from '../../../src/agent/proxy/native/addon.js';
import { LEAN_NODE_FLAGS, RUNTIME_MARKER } from '../../../src/agent/runtime.js';

const addon = loadRelayAddon();
const skip = addon.ok ? false : `native addon not built: ${addon.ok ? '' : addon.reason}`;
const TD = 'spiffe://example.org';
let dir: string;
let ca: TestCa;
let common: string[];

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-runtime-'));
  ca = createTestCa('runtime');
  const svid = ca.issue([`${TD}/web`]);
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  mkdirSync(join(dir, 'policy'));
  common = ['--svid', svid.certPath, '--key', svid.keyPath, '--bundle', join(dir, 'ca.pem'), '--policy-dir', join(dir, 'policy'), '--admin', 'off', '--log-level', 'warn',
    '--outbound', `name=orders,listen=0,address=127.0.0.1:9,id=${TD}/orders`];
});

after(() => {
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('ward agent restarts in place on the lean runtime: same PID, flags and MALLOC_ARENA_MAX set, ready on the same stdout pipe, SIGTERM stops it cleanly', { skip }, async () => {
  const agent = await startAgentProcess(['agent', ...common, '--log-level', 'info']);
  try {
    assert.equal(agent.ready.runtime, 'lean');
    const pid = agent.child.pid as number;
    const argv = cmdline(pid);
    assert.deepEqual(argv.slice(1, 1 + LEAN_NODE_FLAGS.length), [...LEAN_NODE_FLAGS], 'the spawned PID itself now runs with the lean flags');
    assert.ok(argv.includes('--import') && argv.includes('tsx'), 'the user\'s node flags are kept');
    const env = environ(pid);
    assert.ok(env.includes('MALLOC_ARENA_MAX=1'));
    assert.ok(env.includes(`${RUNTIME_MARKER}=lean:MALLOC_ARENA_MAX`));
    assert.ok((agent.ready.ports?.outbound[0] ?? 0) > 0);
    assert.doesNotMatch(agent.stderr(), /lean not in effect/);
  } finally {
    assert.equal(await agent.stop(), 0, 'SIGTERM after the restart still stops the agent with code 0');
  }
});

test('--runtime default and a user-set MALLOC_ARENA_MAX: no restart / the user\'s value kept', { skip }, async () => {
  const plain = await startAgentProcess(['agent', ...common, '--runtime', 'default']);
  try {
    assert.equal(plain.ready.runtime, 'default');
    assert.ok(!cmdline(plain.child.pid as number).includes(LEAN_NODE_FLAGS[0] as string));
  } finally {
    await plain.stop();
  }
  const own = await startAgentProcess(['agent', ...common], 20_000, { env: { MALLOC_ARENA_MAX: '4' } });
  try {
    assert.equal(own.ready.runtime, 'lean');
    const env = environ(own.child.pid as number);
    assert.ok(env.includes('MALLOC_ARENA_MAX=4'));
    assert.ok(env.includes(`${RUNTIME_MARKER}=lean:`));
  } finally {
    await own.stop();
  }
});

test('ward agent run: the app sees neither the marker nor our MALLOC_ARENA_MAX, and its exit code is the agent\'s', { skip }, async () => {
  const out = join(dir, 'app-env.json');
  const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ env: process.env, ppid: process.ppid })); process.exit(7)`;
  const child = spawn(process.execPath, wardArgs(['agent', 'run', ...common, '--', process.execPath, '-e', script]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 7);
  assert.match(stdout, /"runtime":"lean"/);
  const seen = JSON.parse(readFileSync(out, 'utf8')) as { env: Record<string, string>; ppid: number };
  assert.equal(seen.ppid, child.pid, 'the app is the child of the PID that was spawned');
  assert.equal(seen.env.WARD_AGENT, '1');
  assert.equal(seen.env[RUNTIME_MARKER], undefined);
  assert.equal(seen.env.MALLOC_ARENA_MAX, undefined);
});

test('the addon\'s execve refuses bad arguments and reports a failed exec with errno, returning to JavaScript', { skip }, () => {
  if (!addon.ok || addon.addon.execve === undefined) return assert.fail('addon without execve');
  const execve = addon.addon.execve.bind(addon.addon);
  assert.throws(() => execve('/bin/true', [] as string[], []), { code: 'ERR_RELAY_ARG' });
  assert.throws(() => execve('/bin/true', ['a\0b'], []), { code: 'ERR_RELAY_ARG' });
  assert.throws(() => execve('/bin/true', [1 as unknown as string], []), { code: 'ERR_RELAY_ARG' });
  assert.throws(() => execve('/bin/true', 'x' as unknown as string[], []), { code: 'ERR_RELAY_ARG' });
  assert.throws(() => execve(join(dir, 'no-such-binary'), ['x'], []), (e: Error & { code?: string; errno?: number }) => e.code === 'ERR_RELAY_EXEC' && e.errno === 2 && /ENOENT|No such file/.test(e.message));
});
