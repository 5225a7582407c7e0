// The agent's lean runtime (ADR 0073) with real processes: `ward agent` restarts itself in place
// (same PID, stdout pipe and signals still working) with the lean node flags and malloc setting;
// `--runtime default` does not; `ward agent run` gives the app an environment without what the
// restart added and exits with the app's code. Plus the addon's execve refusing bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
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

interface Mapping { readonly key: string; readonly perms: string; readonly path: string; readonly rss: number; readonly anon: number }
const SMAPS_OF_CHILD = `
  const smaps = () => require('fs').readFileSync('/proc/self/smaps', 'utf8').split(/\\n(?=[0-9a-f]+-[0-9a-f]+ )/).map((e) => {
    const h = e.split('\\n')[0].split(/\\s+/);
    const kb = (k) => Number(new RegExp('\\\\n' + k + ':\\\\s+(\\\\d+) kB').exec(e)?.[1] ?? 0);
    return { key: h[0], perms: h[1], path: h[5] ?? '', rss: kb('Rss'), anon: kb('Anonymous') };
  });
  const rssFile = () => Number(/RssFile:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
`;

test('the addon\'s trimMemory unmaps clean read-only file pages only: the process keeps working, copy-on-write and writable mappings keep their pages (ADR 0075)', { skip }, () => {
  if (!addon.ok || addon.addon.trimMemory === undefined) return assert.fail('addon without trimMemory');
  const script = `${SMAPS_OF_CHILD}
    const addon = require(${JSON.stringify(join(process.cwd(), 'build', 'Release', 'ward_relay.node'))});
    require('crypto').createHash('sha256').update('warm').digest();
    const before = smaps(); const fileBefore = rssFile();
    const r = addon.trimMemory();
    const after = smaps(); const fileAfter = rssFile();
    // Code and read-only data must map back correctly: crypto, the regexp engine, JSON, a TLS context.
    const digest = require('crypto').createHash('sha256').update('ward').digest('hex');
    const ok = /^(\\d+)-x$/.exec('42-x')[1] === '42' && JSON.parse('{"a":[1]}').a[0] === 1 && require('tls').createSecureContext({}) !== undefined;
    process.stdout.write(JSON.stringify({ r, before, after, fileBefore, fileAfter, digest, ok }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { r: { filePagesKb: number; mappings: number; heapTrimmed: boolean }; before: Mapping[]; after: Mapping[]; fileBefore: number; fileAfter: number; digest: string; ok: boolean };
  assert.ok(out.r.filePagesKb > 5_000 && out.r.mappings > 0, `released ${out.r.filePagesKb} kB in ${out.r.mappings} mappings`);
  assert.ok(out.fileAfter < out.fileBefore - out.r.filePagesKb / 2, `RssFile ${out.fileBefore} → ${out.fileAfter} kB`);
  assert.equal(typeof out.r.heapTrimmed, 'boolean');
  assert.equal(out.digest, createHash('sha256').update('ward').digest('hex'));
  assert.equal(out.ok, true);
  const after = new Map(out.after.map((m) => [m.key, m]));
  // The node binary's RELRO: read-only now, but its pages were written by the dynamic linker
  // (copy-on-write, anonymous). Dropping them would map the unrelocated file back.
  const cow = out.before.filter((m) => m.path.startsWith('/') && !m.perms.includes('w') && m.anon > 0);
  assert.ok(cow.length > 0, 'a relocated read-only mapping exists to check');
  for (const m of cow) assert.equal(after.get(m.key)?.rss, m.rss, `${m.path} ${m.perms} (copy-on-write) kept`);
  const writable = out.before.filter((m) => m.path.startsWith('/') && m.perms[1] === 'w' && m.rss > 0);
  assert.ok(writable.length > 0);
  for (const m of writable) assert.ok((after.get(m.key)?.rss ?? 0) >= m.rss, `${m.path} ${m.perms} (writable) kept`);
  const code = out.before.filter((m) => m.path === process.execPath && m.perms === 'r-xp');
  const codeBefore = code.reduce((n, m) => n + m.rss, 0);
  const codeAfter = code.reduce((n, m) => n + (after.get(m.key)?.rss ?? 0), 0);
  assert.ok(codeAfter < codeBefore / 2, `the node binary's code: ${codeBefore} → ${codeAfter} kB resident`);
});

test('a lean agent holds far fewer file pages once ready than a default one (start-up memory released, ADR 0075)', { skip }, async () => {
  const rssFile = (pid: number): number => Number(/RssFile:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const lean = await startAgentProcess(['agent', ...common, '--log-level', 'debug']);
  const plain = await startAgentProcess(['agent', ...common, '--runtime', 'default']);
  try {
    const leanKb = rssFile(lean.child.pid as number);
    const plainKb = rssFile(plain.child.pid as number);
    assert.ok(leanKb < plainKb * 0.75, `RssFile lean ${leanKb} kB vs default ${plainKb} kB`);
    const log = lean.stderr().split('\n').find((l) => l.includes('start-up memory released'));
    assert.ok(log !== undefined, 'the release is logged at debug');
    assert.ok((JSON.parse(log) as { filePagesKb: number }).filePagesKb > 5_000);
  } finally {
    await lean.stop();
    await plain.stop();
  }
});
