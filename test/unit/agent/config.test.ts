// Agent configuration: file + flags into one frozen, validated object; every option as a flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig, parseHostPort, type ControlAgentConfig } from '../../../src/agent/config.js';
import { resolveAgentConfig } from '../../../src/cli/commands/agent/options.js';
import { DEFAULT_LIMITS } from '../../../src/agent/proxy/limits.js';
import { isWardError } from '../../../src/core/errors.js';

const base = { identity: { svid: 's.pem', key: 'k.pem', bundle: 'b.pem' }, policyDir: 'p', inbound: [{ port: 8443, appPort: 8080 }] };

test('defaults fill in, paths resolve from the config directory, the result is frozen', () => {
  const c = parseAgentConfig(base, '/etc/ward');
  assert.equal(c.svidFile, '/etc/ward/s.pem');
  assert.equal(c.policyDir, '/etc/ward/p');
  assert.deepEqual(c.inbound[0], { port: 8443, host: '0.0.0.0', mode: 'STRICT', protocol: 'tcp', appHost: '127.0.0.1', appPort: 8080, appProtocol: 'http1' });
  assert.deepEqual(c.admin, { host: '127.0.0.1', port: 15000 });
  assert.deepEqual(c.limits, DEFAULT_LIMITS);
  assert.equal(c.workers, 1);
  assert.equal(c.dataPlane, 'auto');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.inbound[0]));
});

test('invalid values fail with ERR_AGENT_CONFIG naming the field', () => {
  const cases: [unknown, string][] = [
    [{ ...base, inbound: [{ port: 8443, appPort: 8080, mode: 'LAX' }] }, 'inbound[0].mode'],
    [{ ...base, inbound: [{ port: 70000, appPort: 8080 }] }, 'inbound[0].port'],
    [{ ...base, outbound: [{ name: 'orders', listen: 9001, address: '10.0.0.1:8443', allowedIds: [] }] }, 'outbound[0].allowedIds'],
    [{ ...base, admin: { listen: '0.0.0.0:15000' } }, 'admin.listen'],
    [{ ...base, dataPlane: 'kernel' }, 'dataPlane'],
    [{ ...base, dataPlane: 'native', workers: 2 }, 'dataPlane'],
    [{ ...base, jwt: { issuer: 'i', audiences: ['a'] } }, 'jwt'],
    [{ ...base, limits: { nope: 1 } }, 'limits.nope'],
    [{ ...base, surprise: 1 }, 'surprise'],
    [{ ...base, inbound: [] }, 'inbound'],
    [{ ...base, identity: undefined }, 'identity'],
  ];
  for (const [raw, path] of cases) {
    assert.throws(() => parseAgentConfig(raw, '/'), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_CONFIG' && e.details?.path === path, path);
  }
  assert.throws(() => parseAgentConfig({ ...base, limits: { idleTimeoutMs: 'soon' } }, '/'), (e: unknown) => isWardError(e) && e.code === 'ERR_DURATION_INVALID');
});

test('host:port forms', () => {
  assert.deepEqual(parseHostPort('9001', 'x', '127.0.0.1'), { host: '127.0.0.1', port: 9001 });
  assert.deepEqual(parseHostPort(':9001', 'x', '127.0.0.1'), { host: '127.0.0.1', port: 9001 });
  assert.deepEqual(parseHostPort('[::1]:9001', 'x', '127.0.0.1'), { host: '::1', port: 9001 });
  assert.deepEqual(parseHostPort('orders.internal:8443', 'x', '127.0.0.1'), { host: 'orders.internal', port: 8443 });
});

test('flags override the file, and every file field has a flag', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-agent-config-'));
  try {
    writeFileSync(join(dir, 'agent.yaml'), 'identity: { svid: s.pem, key: k.pem, bundle: b.pem }\npolicyDir: p\ninbound: [{ port: 1, appPort: 2 }]\nlimits: { idleTimeoutMs: 1m }\n');
    const c = resolveAgentConfig({
      config: join(dir, 'agent.yaml'),
      svid: 'other.pem',
      revocations: 'rev.txt',
      inbound: ['port=8443,app=8080,protocol=http,mode=permissive,appProtocol=h2c,host=127.0.0.1'],
      outbound: ['name=orders,listen=9001,address=10.0.0.5:8443,id=spiffe://t/orders|spiffe://t/orders-v2'],
      httpProxy: '15001',
      jwtIssuer: 'https://i', jwtAudience: ['a', 'b'], jwksUri: 'https://i/jwks',
      admin: 'off',
      spoolDir: 'spool', eventSink: 'http://127.0.0.1:1/e', spoolMaxBytes: '1MiB', agentId: 'x',
      limit: ['headersTimeoutMs=2s', 'maxHeaderBytes=8KiB'],
      reloadInterval: '250ms', workers: '2', logLevel: 'warn',
    }, '/work');
    assert.equal(c.svidFile, '/work/other.pem');
    assert.equal(c.keyFile, join(dir, 'k.pem'));
    assert.equal(c.revocationsFile, '/work/rev.txt');
    assert.deepEqual(c.inbound, [{ port: 8443, host: '127.0.0.1', mode: 'PERMISSIVE', protocol: 'http', appHost: '127.0.0.1', appPort: 8080, appProtocol: 'h2c' }]);
    assert.deepEqual(c.outbound[0], { name: 'orders', host: '10.0.0.5', port: 8443, allowedIds: ['spiffe://t/orders', 'spiffe://t/orders-v2'], listenHost: '127.0.0.1', listenPort: 9001 });
    assert.deepEqual(c.httpProxy, { host: '127.0.0.1', port: 15001 });
    assert.deepEqual(c.jwt, { issuer: 'https://i', audiences: ['a', 'b'], jwksFile: undefined, jwksUri: 'https://i/jwks' });
    assert.equal(c.admin, undefined);
    assert.deepEqual(c.spool, { dir: '/work/spool', sinkUrl: 'http://127.0.0.1:1/e', maxBytes: 1024 * 1024, agentId: 'x' });
    assert.equal(c.limits.headersTimeoutMs, 2000);
    assert.equal(c.limits.maxHeaderBytes, 8192);
    assert.equal(c.limits.idleTimeoutMs, 60_000, 'file value kept where no flag overrides it');
    assert.equal(c.reloadIntervalMs, 250);
    assert.equal(c.workers, 2);
    assert.equal(c.logLevel, 'warn');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('control mode: no identity files or policy directory, and they are refused if given', () => {
  const raw = { inbound: [{ port: 8443, appPort: 8080, protocol: 'http' }], admin: 'off' };
  assert.throws(() => parseAgentConfig(raw, '/'), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_CONFIG' && e.details?.path === 'identity', 'static mode still requires identity');
  const ctl = parseAgentConfig(raw, '/', 'control');
  assert.equal(ctl.inbound[0]?.appPort, 8080);
  assert.equal('svidFile' in ctl, false);
  assert.equal('policyDir' in ctl, false);
  assert.ok(Object.isFrozen(ctl));
  assert.deepEqual(parseAgentConfig({ ...raw, identity: {} }, '/', 'control').inbound, ctl.inbound, 'an empty identity (from flag merging) counts as absent');
  for (const [extra, path] of [[{ identity: { svid: 's.pem' } }, 'identity'], [{ policyDir: 'p' }, 'policyDir']] as const) {
    assert.throws(() => parseAgentConfig({ ...raw, ...extra }, '/', 'control'), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_CONFIG' && e.details?.path === path, path);
  }
  assert.throws(() => parseAgentConfig({ admin: 'off' }, '/', 'control'), (e: unknown) => isWardError(e) && e.details?.path === 'inbound', 'shared validation still applies');
});

test('control mode through the CLI flags: no placeholders needed', () => {
  const c = resolveAgentConfig({ inbound: ['port=8443,app=8080,protocol=http'], admin: '127.0.0.1:0' }, '/work', 'control');
  assert.deepEqual(c.admin, { host: '127.0.0.1', port: 0 });
  assert.equal('svidFile' in c, false);
  assert.throws(() => resolveAgentConfig({ inbound: ['port=8443,app=8080'], svid: 's.pem' }, '/work', 'control'), (e: unknown) => isWardError(e) && e.details?.path === 'identity');
  assert.throws(() => resolveAgentConfig({ inbound: ['port=8443,app=8080'], policyDir: 'p' }, '/work', 'control'), (e: unknown) => isWardError(e) && e.details?.path === 'policyDir');
});

test('control mode: agent.yaml `control.watchIdleTimeout` is read and bounded; static mode refuses a `control` section', () => {
  const raw = { inbound: [{ port: 8443, appPort: 8080, protocol: 'http' }], admin: 'off' };
  assert.equal(parseAgentConfig(raw, '/', 'control').control.watchIdleTimeoutMs, undefined, 'absent: the controller default applies');
  const ctl = parseAgentConfig({ ...raw, control: { watchIdleTimeout: '1m30s' } }, '/', 'control');
  assert.equal(ctl.control.watchIdleTimeoutMs, 90_000);
  assert.ok(Object.isFrozen(ctl.control));
  for (const [control, path] of [
    [{ watchIdleTimeout: '500ms' }, 'control.watchIdleTimeout'],
    [{ watchIdleTimeout: '2h' }, 'control.watchIdleTimeout'],
    [{ watchIdleTimeout: true }, 'control.watchIdleTimeout'],
    [{ idleTimeout: '1m' }, 'control.idleTimeout'],
    ['45s', 'control'],
  ] as const) {
    assert.throws(() => parseAgentConfig({ ...raw, control }, '/', 'control'), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_CONFIG' && e.details?.path === path, JSON.stringify(control));
  }
  assert.throws(() => parseAgentConfig({ ...raw, control: { watchIdleTimeout: 'soon' } }, '/', 'control'), (e: unknown) => isWardError(e) && e.code === 'ERR_DURATION_INVALID' && e.details?.path === 'control.watchIdleTimeout');
  assert.throws(() => parseAgentConfig({ ...base, control: { watchIdleTimeout: '1m' } }, '/'), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_CONFIG' && e.details?.path === 'control', 'static mode has no watch stream');
  const dir = mkdtempSync(join(tmpdir(), 'ward-agent-config-'));
  try {
    writeFileSync(join(dir, 'agent.yaml'), 'inbound: [{ port: 8443, appPort: 8080 }]\ncontrol: { watchIdleTimeout: 2m }\n');
    // resolveAgentConfig is typed ProxyAgentConfig in control mode; the value is parseAgentConfig's ControlAgentConfig.
    const viaCli = resolveAgentConfig({ config: join(dir, 'agent.yaml') }, '/work', 'control') as ControlAgentConfig;
    assert.equal(viaCli.control.watchIdleTimeoutMs, 120_000, 'read from the file through the CLI');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
