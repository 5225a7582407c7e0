// The lean-runtime restart plan (ADR 0073): pure decisions; the real restart is tested with real
// processes in test/integration/agent-runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LEAN_NODE_FLAGS, RUNTIME_MARKER, appEnvironment, currentRuntime, planRestart, restartIfNeeded, type ProcessFacts } from '../../../src/agent/runtime.js';

const facts = (over: Partial<ProcessFacts> = {}): ProcessFacts => ({
  platform: 'linux',
  execPath: '/usr/bin/node',
  execArgv: ['--import', 'tsx'],
  argv: ['/usr/bin/node', '/opt/ward/bin/ward.js', 'agent', '--config', 'a.yaml'],
  env: { PATH: '/bin', HOME: '/root' },
  ...over,
});

test('lean: our V8 flags first, then the user\'s node flags, then the same script and arguments', () => {
  const plan = planRestart('lean', facts({ execArgv: ['--max-semi-space-size=8'] }));
  assert.equal(plan.restart, true);
  if (!plan.restart) return;
  assert.equal(plan.path, '/usr/bin/node');
  assert.deepEqual(plan.argv, ['/usr/bin/node', ...LEAN_NODE_FLAGS, '--max-semi-space-size=8', '/opt/ward/bin/ward.js', 'agent', '--config', 'a.yaml']);
  assert.ok(plan.env.includes('PATH=/bin'));
  assert.ok(plan.env.includes('MALLOC_ARENA_MAX=1'));
  assert.ok(plan.env.includes(`${RUNTIME_MARKER}=lean:MALLOC_ARENA_MAX`));
});

test('lean: a MALLOC_ARENA_MAX the user set is kept and not recorded as ours', () => {
  const plan = planRestart('lean', facts({ env: { MALLOC_ARENA_MAX: '4' } }));
  assert.ok(plan.restart);
  if (!plan.restart) return;
  assert.ok(plan.env.includes('MALLOC_ARENA_MAX=4'));
  assert.ok(!plan.env.includes('MALLOC_ARENA_MAX=1'));
  assert.ok(plan.env.includes(`${RUNTIME_MARKER}=lean:`));
});

test('no restart: already restarted, runtime default, not Linux, node -e', () => {
  assert.deepEqual(planRestart('lean', facts({ env: { [RUNTIME_MARKER]: 'lean:' } })), { restart: false, runtime: 'lean', reason: 'already restarted' });
  assert.equal(planRestart('default', facts()).restart, false);
  assert.equal(planRestart('lean', facts({ platform: 'darwin' })).restart, false);
  assert.equal(planRestart('lean', facts({ argv: ['/usr/bin/node'] })).restart, false);
  assert.equal(planRestart('lean', facts({ execArgv: ['-e', 'x'], argv: ['/usr/bin/node', 'agent'] })).restart, false);
  assert.equal(planRestart('lean', facts({ execArgv: ['--eval=x'] })).restart, false);
  // A marker set by someone else to anything but lean means "do not restart" and reports default.
  assert.deepEqual(planRestart('lean', facts({ env: { [RUNTIME_MARKER]: 'default' } })), { restart: false, runtime: 'default', reason: 'already restarted' });
});

test('the wrapped app\'s environment loses the marker and what the restart added, nothing else', () => {
  assert.deepEqual(appEnvironment({ A: '1', MALLOC_ARENA_MAX: '1', [RUNTIME_MARKER]: 'lean:MALLOC_ARENA_MAX' }), { A: '1' });
  assert.deepEqual(appEnvironment({ A: '1', MALLOC_ARENA_MAX: '4', [RUNTIME_MARKER]: 'lean:' }), { A: '1', MALLOC_ARENA_MAX: '4' });
  assert.deepEqual(appEnvironment({ A: '1', MALLOC_ARENA_MAX: '4' }), { A: '1', MALLOC_ARENA_MAX: '4' });
  assert.equal(currentRuntime({ [RUNTIME_MARKER]: 'lean:MALLOC_ARENA_MAX' }), 'lean');
  assert.equal(currentRuntime({}), 'default');
});

test('restartIfNeeded: carries on with Node\'s defaults when execve is unavailable or fails, and execs the plan otherwise', () => {
  assert.deepEqual(restartIfNeeded('lean', facts(), () => 'no addon'), { runtime: 'default', note: 'lean runtime unavailable: no addon' });
  const failing = { execve: (): never => { throw Object.assign(new Error('execve failed: ENOENT'), { code: 'ERR_RELAY_EXEC' }); } };
  assert.deepEqual(restartIfNeeded('lean', facts(), () => failing), { runtime: 'default', note: 'lean runtime restart failed: execve failed: ENOENT' });
  let seen: readonly string[] = [];
  const recording = { execve: (_p: string, argv: readonly string[]): never => { seen = argv; throw new Error('stop'); } };
  restartIfNeeded('lean', facts(), () => recording);
  assert.deepEqual(seen.slice(1, 1 + LEAN_NODE_FLAGS.length), LEAN_NODE_FLAGS);
  let called = false;
  restartIfNeeded('default', facts(), () => { called = true; return 'x'; });
  assert.equal(called, false, 'no addon load when no restart is planned');
});
