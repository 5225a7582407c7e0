import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWardError } from '../../../src/core/errors.js';
import { parseListen, parseServerConfig } from '../../../src/server/config.js';

function configCode(fn: () => unknown): { code: string; path: unknown } {
  try {
    fn();
  } catch (e) {
    assert.ok(isWardError(e));
    return { code: e.code, path: e.details?.['path'] };
  }
  assert.fail('expected a config error');
}

test('defaults: SQLite in the data dir, loopback admin API, 1h SVIDs, 10m join tokens, frozen', () => {
  const c = parseServerConfig({ dataDir: '/var/lib/ward/' });
  assert.equal(c.storeUrl, 'sqlite:/var/lib/ward/ward.db');
  assert.deepEqual(c.adminListen, { host: '127.0.0.1', port: 7400 });
  assert.deepEqual(c.agentListen, { host: '0.0.0.0', port: 7401 });
  assert.equal(c.svidTtlMs, 3_600_000);
  assert.equal(c.joinTokenTtlMs, 600_000);
  assert.equal(c.bodyLimitBytes, 1024 * 1024);
  assert.equal(c.trustDomain, 'ward.local');
  assert.deepEqual(c.attestors, { join_token: {} });
  assert.deepEqual(c.masterKey, { provider: 'file', path: '/var/lib/ward/master.key' });
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.adminListen) && Object.isFrozen(c.attestors));
});

test('values are parsed with units; PostgreSQL URLs pass through', () => {
  const c = parseServerConfig({ dataDir: 'd', store: 'postgres://ward@db:5432/ward?schema=prod', svidTtl: '30m', bodyLimit: '64KiB', adminListen: ':9000', agentListen: '[::1]:9001', adminSpiffeIds: ['spiffe://ward.local/ops/alice'] });
  assert.equal(c.storeUrl, 'postgres://ward@db:5432/ward?schema=prod');
  assert.equal(c.svidTtlMs, 1_800_000);
  assert.equal(c.bodyLimitBytes, 65_536);
  assert.deepEqual(c.adminListen, { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(c.agentListen, { host: '::1', port: 9001 });
});

test('every bad value is ERR_CONFIG_INVALID naming its field', () => {
  assert.deepEqual(configCode(() => parseServerConfig({})), { code: 'ERR_CONFIG_INVALID', path: 'dataDir' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', store: 'mysql://x' })), { code: 'ERR_CONFIG_INVALID', path: 'store' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', trustDomain: 'Ward.Local' })), { code: 'ERR_CONFIG_INVALID', path: 'trustDomain' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', svidTtl: '10s' })), { code: 'ERR_CONFIG_INVALID', path: 'svidTtl' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', bodyLimit: '1GiB' })), { code: 'ERR_CONFIG_INVALID', path: 'bodyLimit' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', adminListen: 'host:99999' })), { code: 'ERR_CONFIG_INVALID', path: 'adminListen' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', adminSpiffeIds: ['spiffe://other.org/x'] })), { code: 'ERR_CONFIG_INVALID', path: 'adminSpiffeIds[0]' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', attestors: ['join_token'] })), { code: 'ERR_CONFIG_INVALID', path: 'attestors' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', masterKeyProvider: 'vault' })), { code: 'ERR_CONFIG_INVALID', path: 'masterKeyProvider' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', adminTls: 'yes' })), { code: 'ERR_CONFIG_INVALID', path: 'adminTls' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', maxWatchStreamsPerAgent: 0 })), { code: 'ERR_CONFIG_INVALID', path: 'maxWatchStreamsPerAgent' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', maxWatchStreamsPerAgent: '4' })), { code: 'ERR_CONFIG_INVALID', path: 'maxWatchStreamsPerAgent' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', watchBufferLimit: '1KiB' })), { code: 'ERR_CONFIG_INVALID', path: 'watchBufferLimit' });
});

test('store maintenance: prune interval and retentions, with defaults and lower bounds', () => {
  const d = parseServerConfig({ dataDir: 'd' });
  assert.deepEqual([d.pruneIntervalMs, d.changeLogRetentionMs, d.eventRetentionMs], [60_000, 3_600_000, 30 * 86_400_000]);
  const c = parseServerConfig({ dataDir: 'd', pruneInterval: '5m', changeLogRetention: '2h', eventRetention: '7d' });
  assert.deepEqual([c.pruneIntervalMs, c.changeLogRetentionMs, c.eventRetentionMs], [300_000, 7_200_000, 7 * 86_400_000]);
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', pruneInterval: '100ms' })), { code: 'ERR_CONFIG_INVALID', path: 'pruneInterval' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', changeLogRetention: '10s' })), { code: 'ERR_CONFIG_INVALID', path: 'changeLogRetention' });
  assert.deepEqual(configCode(() => parseServerConfig({ dataDir: 'd', eventRetention: '1m' })), { code: 'ERR_CONFIG_INVALID', path: 'eventRetention' });
});

test('listen addresses: host:port, :port, port, [v6]:port; port 0 asks the OS', () => {
  assert.deepEqual(parseListen('0.0.0.0:0', 'x', 'h', 1), { host: '0.0.0.0', port: 0 });
  assert.deepEqual(parseListen(8080, 'x', 'h', 1), { host: 'h', port: 8080 });
  assert.deepEqual(parseListen('8080', 'x', 'h', 1), { host: 'h', port: 8080 });
  assert.deepEqual(parseListen(undefined, 'x', 'h', 1), { host: 'h', port: 1 });
  for (const bad of ['', 'a:b', 'host:', '[::1]', 'host:123456']) assert.throws(() => parseListen(bad, 'x', 'h', 1), /ERR_CONFIG_INVALID|x:/);
});
