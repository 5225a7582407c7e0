import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../../src/core/clock.js';
import { JoinTokenAttestor } from '../../../../src/platforms/join-token/attestor.js';
import { JoinTokenCollector } from '../../../../src/platforms/join-token/collector.js';
import { hashJoinToken, issueJoinToken, JOIN_TOKEN_DEFAULT_TTL_MS } from '../../../../src/platforms/join-token/token.js';
import { MemoryAttestationState } from '../../../../src/platforms/state.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

attestorContract('join_token', async () => ({
  attestor: new JoinTokenAttestor(),
  oneTime: true,
  valid: async (ctx) => ({ token: (await issueJoinToken({ clock: ctx.clock, state: ctx.state, attributes: { 'host.name': 'build-01' } })).token }),
  forged: async () => ({ token: Buffer.alloc(32, 7).toString('base64url') }),
  expired: async (ctx, clock) => {
    const { token } = await issueJoinToken({ clock: ctx.clock, state: ctx.state, ttlMs: 60_000 });
    clock.advance(60_000);
    return { token };
  },
  expectSelectors: ['join_token:host-name:build-01'],
  expectAttributes: { 'host.name': 'build-01' },
  close: async () => {},
}));

test('a token is 32 random bytes, stored only as its SHA-256, valid for 10 minutes by default', async () => {
  const clock = new ManualClock(START);
  const puts: { key: string; data: Record<string, string>; expiresAt: number }[] = [];
  const inner = new MemoryAttestationState();
  const spy = {
    consumeOnce: inner.consumeOnce.bind(inner),
    redeemCredential: inner.redeemCredential.bind(inner),
    putCredential: async (kind: string, key: string, record: { expiresAt: number; data: Record<string, string> }) => {
      puts.push({ key, data: { ...record.data }, expiresAt: record.expiresAt });
      return inner.putCredential(kind, key, record);
    },
  };
  const issued = await issueJoinToken({ clock, state: spy, random: (n) => Buffer.alloc(n, 0xab) });
  assert.equal(issued.token, Buffer.alloc(32, 0xab).toString('base64url'));
  assert.equal(issued.expiresAt, clock.now() + JOIN_TOKEN_DEFAULT_TTL_MS);
  assert.equal(puts.length, 1);
  assert.equal(puts[0]!.key, hashJoinToken(issued.token));
  assert.ok(!JSON.stringify(puts).includes(issued.token), 'the token itself is never stored');
  const ctx = { ...newContext(clock), state: spy };
  clock.advance(JOIN_TOKEN_DEFAULT_TTL_MS - 1);
  const result = await new JoinTokenAttestor().attest({ token: issued.token }, ctx);
  assert.equal(result.agentId, `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/${issued.id}`);
  assert.ok(!JSON.stringify(result).includes(issued.token), 'the token never appears in a result');
});

test('a token is expired at exactly its expiry instant', async () => {
  const clock = new ManualClock(START);
  const ctx = newContext(clock);
  const { token } = await issueJoinToken({ clock, state: ctx.state });
  clock.advance(JOIN_TOKEN_DEFAULT_TTL_MS);
  const err = await rejectsWith(new JoinTokenAttestor().attest({ token }, ctx), 'ERR_ATTEST_EXPIRED');
  assert.ok(!err.message.includes(token) && !JSON.stringify(err.details).includes(token));
});

test('racing redemptions of one token: exactly one wins', async () => {
  const clock = new ManualClock(START);
  const ctx = newContext(clock);
  const { token } = await issueJoinToken({ clock, state: ctx.state });
  const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => new JoinTokenAttestor().attest({ token }, ctx)));
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code: string }).code, 'ERR_ATTEST_REPLAYED');
});

test('a store with a lax (case-insensitive) key match cannot make a different token redeem', async () => {
  const clock = new ManualClock(START);
  const inner = new MemoryAttestationState();
  const lax = {
    consumeOnce: inner.consumeOnce.bind(inner),
    putCredential: (kind: string, key: string, record: { expiresAt: number; data: Readonly<Record<string, string>> }) => inner.putCredential(kind, key.toLowerCase(), record),
    // Simulates a collation bug: every lookup hits the one stored record.
    redeemCredential: async (kind: string, _key: string, now: number) => inner.redeemCredential(kind, hashJoinToken(good.token), now),
  };
  const good = await issueJoinToken({ clock, state: lax });
  const ctx = { ...newContext(clock), state: lax };
  await rejectsWith(new JoinTokenAttestor().attest({ token: Buffer.alloc(32, 1).toString('base64url') }, ctx), 'ERR_ATTEST_FORGED');
});

test('issue rejects bad TTLs and attribute keys; the collector rejects malformed tokens', async () => {
  const clock = new ManualClock(START);
  const state = new MemoryAttestationState();
  await rejectsWith(issueJoinToken({ clock, state, ttlMs: 0 }), 'ERR_ATTEST_MALFORMED');
  await rejectsWith(issueJoinToken({ clock, state, ttlMs: 8 * 24 * 3_600_000 }), 'ERR_ATTEST_MALFORMED');
  await rejectsWith(issueJoinToken({ clock, state, attributes: { 'Not A Key': 'x' } }), 'ERR_ATTEST_MALFORMED');
  assert.throws(() => new JoinTokenCollector('short'), { code: 'ERR_ATTEST_MALFORMED' });
  const { token } = await issueJoinToken({ clock, state });
  assert.deepEqual(await new JoinTokenCollector(`${token}\n`).collect(), { token });
});
