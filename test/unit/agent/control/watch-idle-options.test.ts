// `--watch-idle-timeout`: parsed into the control options, refused with ERR_CONTROL_CONFIG when
// it is not a duration or out of bounds; agent.yaml `control.watchIdleTimeout` under the flag; its
// default stays three heartbeats of a default server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentConfig } from '../../../../src/agent/config.js';
import { DEFAULT_WATCH_IDLE_TIMEOUT_MS } from '../../../../src/agent/control/controller.js';
import { ControlError } from '../../../../src/agent/control/errors.js';
import { resolveControlOptions } from '../../../../src/agent/control/options.js';
import { parseServerConfig } from '../../../../src/server/config.js';
import { makeSelfSigned, TempDir } from '../../../fakes/pki.js';

test('--watch-idle-timeout: a duration within 1s..1h; anything else is ERR_CONTROL_CONFIG naming the option', async (t) => {
  const tmp = new TempDir();
  t.after(() => tmp.remove());
  const dir = tmp.path;
  tmp.file('bundle.pem', (await makeSelfSigned(tmp, { name: 'CN=ward-ca', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01') })).certPem);
  const proxy = parseAgentConfig({ inbound: [{ port: 8443, appPort: 8080, protocol: 'http' }] }, dir, 'control');
  const flags = { server: 'https://127.0.0.1:7401', serverBundle: 'bundle.pem', trustDomain: 'ward.test', joinToken: 'x', service: 'orders' };
  assert.equal(resolveControlOptions(flags, proxy, dir).control.watchIdleTimeoutMs, undefined, 'unset: the controller default applies');
  assert.equal(resolveControlOptions({ ...flags, watchIdleTimeout: '90s' }, proxy, dir).control.watchIdleTimeoutMs, 90_000);
  assert.equal(resolveControlOptions({ ...flags, watchIdleTimeout: '1m30s' }, proxy, dir).control.watchIdleTimeoutMs, 90_000);
  for (const bad of ['soon', '-5s', '500ms', '2h', '']) {
    assert.throws(() => resolveControlOptions({ ...flags, watchIdleTimeout: bad }, proxy, dir), (e: unknown) => e instanceof ControlError && e.code === 'ERR_CONTROL_CONFIG' && e.details?.path === 'watchIdleTimeout', bad);
  }
});

test('agent.yaml `control.watchIdleTimeout` applies when the flag is not given; the flag overrides it', async (t) => {
  const tmp = new TempDir();
  t.after(() => tmp.remove());
  const dir = tmp.path;
  tmp.file('bundle.pem', (await makeSelfSigned(tmp, { name: 'CN=ward-ca', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01') })).certPem);
  const proxy = parseAgentConfig({ inbound: [{ port: 8443, appPort: 8080, protocol: 'http' }], control: { watchIdleTimeout: '2m' } }, dir, 'control');
  const flags = { server: 'https://127.0.0.1:7401', serverBundle: 'bundle.pem', trustDomain: 'ward.test', joinToken: 'x', service: 'orders' };
  assert.equal(resolveControlOptions(flags, proxy, dir).control.watchIdleTimeoutMs, 120_000, 'from the file');
  assert.equal(resolveControlOptions({ ...flags, watchIdleTimeout: '90s' }, proxy, dir).control.watchIdleTimeoutMs, 90_000, 'the flag wins');
  assert.throws(() => resolveControlOptions({ ...flags, watchIdleTimeout: '2h' }, proxy, dir), (e: unknown) => e instanceof ControlError && e.details?.path === 'watchIdleTimeout', 'a bad flag is refused even with a good file value');
});

test('the default watch idle timeout is three heartbeats of a server on its defaults', () => {
  const server = parseServerConfig({ dataDir: '/tmp/x', store: 'sqlite:/tmp/x/ward.db', trustDomain: 'ward.test' });
  assert.equal(DEFAULT_WATCH_IDLE_TIMEOUT_MS, 3 * server.watchHeartbeatMs);
});
