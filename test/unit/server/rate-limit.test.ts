// The refusal limiter on its own (ADR 0077): source keys (IPv4-mapped IPv6, /64 prefixes), the
// table bound under a spray of distinct sources (no fresh burst by pushing others out), the
// global bucket, one aggregate row per source per window with folding past
// maxAuditRowsPerWindow, and the config keys with their error paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/core/clock.js';
import { isWardError } from '../../../src/core/errors.js';
import { parseServerConfig, type RefusalRateLimitConfig } from '../../../src/server/config.js';
import { RefusalLimiter, credentialFingerprint, sourceKey } from '../../../src/server/rate-limit.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function config(over: Partial<RefusalRateLimitConfig> = {}): RefusalRateLimitConfig {
  return { ...parseServerConfig({ dataDir: 'd' }).refusalRateLimit, ...over };
}

function limiter(over: Partial<RefusalRateLimitConfig> = {}): { clock: ManualClock; l: RefusalLimiter } {
  const clock = new ManualClock(T0 + 1000);
  return { clock, l: new RefusalLimiter(config(over), () => clock.now()) };
}

test('source keys: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64, zones dropped, junk shares one key', () => {
  assert.equal(sourceKey('203.0.113.7', 64), '203.0.113.7');
  assert.equal(sourceKey('::ffff:203.0.113.7', 64), '203.0.113.7');
  assert.equal(sourceKey('::FFFF:cb00:7107', 64), '203.0.113.7');
  assert.equal(sourceKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:0db8:0001:0002::1', 64), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1', 128), '2001:db8:1:2:aaaa::1');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1', 48), '2001:db8:1::/48');
  assert.equal(sourceKey('fe80::1%eth0', 64), 'fe80::/64');
  assert.equal(sourceKey('::1', 64), '::/64');
  assert.equal(sourceKey(undefined, 64), 'unknown');
  assert.equal(sourceKey('not-an-ip', 64), 'unknown');
});

test('credential fingerprints are keyed, stable in-process and never contain the credential', () => {
  const token = `Bearer ward_adm_${'B'.repeat(43)}`;
  assert.equal(credentialFingerprint(token), credentialFingerprint(token));
  assert.notEqual(credentialFingerprint(token), credentialFingerprint(`${token}x`));
  assert.ok(!credentialFingerprint(token).includes('BBBB'));
  assert.equal(credentialFingerprint(token).length, 22);
});

test('a source gets its burst, then 429 with Retry-After until its bucket refills', () => {
  const { clock, l } = limiter({ burst: 3, refillPerSecond: 0.5 });
  const d = [1, 2, 3, 4].map(() => l.charge('admin', '198.51.100.1', 'ERR_SERVER_UNAUTHENTICATED'));
  assert.deepEqual(d.map((x) => x.limited), [false, false, false, true]);
  assert.deepEqual(d[3], { limited: true, scope: 'source', retryAfterSeconds: 2 });
  // Another source and the other surface have their own buckets.
  assert.equal(l.charge('admin', '198.51.100.2', 'E').limited, false);
  assert.equal(l.charge('agent', '198.51.100.1', 'E').limited, false);
  clock.advance(2000);
  assert.equal(l.charge('admin', '198.51.100.1', 'E').limited, false);
  assert.equal(l.charge('admin', '198.51.100.1', 'E').limited, true);
  // A clock stepping back refills nothing.
  clock.advance(-60_000);
  assert.equal(l.charge('admin', '198.51.100.1', 'E').limited, true);
});

test('the global bucket bounds every source together', () => {
  const { l } = limiter({ burst: 2, globalBurst: 5, globalRefillPerSecond: 1 });
  const out = Array.from({ length: 8 }, (_, i) => l.charge('admin', `192.0.2.${i}`, 'E'));
  assert.deepEqual(out.map((d) => d.limited), [false, false, false, false, false, true, true, true]);
  assert.deepEqual(out[5], { limited: true, scope: 'global', retryAfterSeconds: 1 });
});

test('spray: the table never exceeds maxSources, and new sources share an overflow bucket instead of evicting busy ones', () => {
  const max = 64;
  const { clock, l } = limiter({ burst: 2, refillPerSecond: 1, globalBurst: 1_000_000, globalRefillPerSecond: 1_000_000, maxSources: max });
  let limitedNew = 0;
  for (let i = 0; i < 20_000; i++) {
    const d = l.charge('admin', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'E');
    if (d.limited) limitedNew += 1;
    assert.ok(l.size <= max);
  }
  assert.equal(l.size, max);
  // The first `max` sources each got their burst; every later one shares one bucket of `burst`.
  assert.equal(limitedNew, 20_000 - max - 2);
  assert.equal(l.stats().overflowed, 20_000 - max);
  // A busy source was not pushed out: it is still limited (no fresh burst).
  assert.equal(l.charge('admin', '10.0.0.0', 'E').limited, false, 'it had one token left');
  assert.equal(l.charge('admin', '10.0.0.0', 'E').limited, true);
  // Once buckets have refilled they are swept and slots are free again.
  clock.advance(10_000);
  l.takeRows();
  assert.equal(l.size, 0);
  assert.equal(l.charge('admin', '172.16.0.1', 'E').limited, false);
});

test('pending aggregate rows are bounded too: beyond maxSources they fold into source/*', () => {
  const { clock, l } = limiter({ burst: 1, refillPerSecond: 0.001, globalBurst: 1_000_000, globalRefillPerSecond: 1_000_000, maxSources: 16, maxAuditRowsPerWindow: 1000 });
  for (let i = 0; i < 100; i++) {
    const ip = `10.1.0.${i}`;
    l.charge('admin', ip, 'E');
    l.charge('admin', ip, 'E');
  }
  assert.ok(l.pending <= 17, `pending ${l.pending}`);
  clock.advance(60_000);
  const rows = l.takeRows();
  // 16 sources hold a bucket each (one refusal, one suppressed); the other 84 share one overflow
  // bucket (one refusal among them, 167 suppressed): every suppressed request is counted.
  assert.equal(rows.reduce((n, r) => n + r.count, 0), 16 + 167);
  assert.ok(rows.length <= 17);
});

test('one aggregate row per source per window; past maxAuditRowsPerWindow the rest are summed into source/*', () => {
  const { clock, l } = limiter({ burst: 1, refillPerSecond: 0.001, globalBurst: 1_000_000, globalRefillPerSecond: 1_000_000, windowMs: 60_000, maxAuditRowsPerWindow: 2 });
  // Source i is suppressed i times (after its one free refusal).
  for (let i = 1; i <= 5; i++) for (let k = 0; k <= i; k++) l.charge('agent', `192.0.2.${i}`, k % 2 === 0 ? 'ERR_ATTEST_FORGED' : 'ERR_ATTEST_MALFORMED');
  assert.deepEqual(l.takeRows(), [], 'the window has not ended');
  clock.advance(58_000); // T0 + 59 s: still the first window
  l.charge('agent', '192.0.2.5', 'ERR_ATTEST_FORGED');
  clock.advance(1000);
  // A refusal in the next window is its own row, later.
  l.charge('agent', '192.0.2.5', 'ERR_ATTEST_FORGED');
  const rows = l.takeRows();
  assert.deepEqual(rows.map((r) => [r.source, r.count, r.sources]), [['192.0.2.5', 6, 1], ['192.0.2.4', 4, 1], ['*', 3 + 2 + 1, 3]]);
  assert.deepEqual(rows[0]?.codes, { ERR_ATTEST_MALFORMED: 3, ERR_ATTEST_FORGED: 3 });
  assert.equal(rows[0]?.windowStart, T0);
  assert.equal(rows[0]?.windowEnd, T0 + 60_000);
  assert.equal(l.pending, 1);
  assert.deepEqual(l.takeRows(true).map((r) => [r.source, r.count, r.windowStart]), [['192.0.2.5', 1, T0 + 60_000]]);
  assert.deepEqual(l.stats().rateLimited, { admin: 0, agent: 15 + 1 + 1 });
});

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isWardError(e));
    return `${e.code} ${String(e.details?.['path'])}`;
  }
  return 'ok';
}

test('config: refusalRateLimit defaults, overrides, and every bad value names its field', () => {
  const d = parseServerConfig({ dataDir: 'd' }).refusalRateLimit;
  assert.deepEqual(d, { burst: 20, refillPerSecond: 1, globalBurst: 500, globalRefillPerSecond: 50, windowMs: 60_000, maxSources: 10_000, maxAuditRowsPerWindow: 100, key: 'ip', ipv6PrefixLength: 64 });
  assert.ok(Object.isFrozen(d));
  const c = parseServerConfig({ dataDir: 'd', refusalRateLimit: { burst: 5, refillPerSecond: 0.2, window: '5m', key: 'ip+token', ipv6PrefixLength: 56 } }).refusalRateLimit;
  assert.deepEqual([c.burst, c.refillPerSecond, c.windowMs, c.key, c.ipv6PrefixLength, c.globalBurst], [5, 0.2, 300_000, 'ip+token', 56, 500]);
  const bad: [unknown, string][] = [
    ['x', 'refusalRateLimit'],
    [[], 'refusalRateLimit'],
    [{ burst: 0 }, 'refusalRateLimit.burst'],
    [{ burst: 1.5 }, 'refusalRateLimit.burst'],
    [{ burst: '20' }, 'refusalRateLimit.burst'],
    [{ refillPerSecond: 0 }, 'refusalRateLimit.refillPerSecond'],
    [{ refillPerSecond: Number.NaN }, 'refusalRateLimit.refillPerSecond'],
    [{ burst: 100, globalBurst: 50 }, 'refusalRateLimit.globalBurst'],
    [{ globalRefillPerSecond: -1 }, 'refusalRateLimit.globalRefillPerSecond'],
    [{ window: '100ms' }, 'refusalRateLimit.window'],
    [{ window: '2h' }, 'refusalRateLimit.window'],
    [{ maxSources: 1 }, 'refusalRateLimit.maxSources'],
    [{ maxAuditRowsPerWindow: 0 }, 'refusalRateLimit.maxAuditRowsPerWindow'],
    [{ key: 'token' }, 'refusalRateLimit.key'],
    [{ ipv6PrefixLength: 129 }, 'refusalRateLimit.ipv6PrefixLength'],
    [{ enabled: false }, 'refusalRateLimit.enabled'],
  ];
  for (const [value, path] of bad) assert.equal(configPath(() => parseServerConfig({ dataDir: 'd', refusalRateLimit: value })), `ERR_CONFIG_INVALID ${path}`, JSON.stringify(value));
});
