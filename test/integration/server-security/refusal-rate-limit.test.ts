// The refusal rate limit (ADR 0077) on a real server, real sockets, SQLite: an unauthenticated
// burst past `refusalRateLimit.burst` gets 429 ERR_SERVER_RATE_LIMITED with Retry-After and
// costs the audit log exactly `burst` rows plus one aggregate `auth.rate_limited` row per
// window; a valid admin token from the same address keeps working throughout; the bucket
// refills with the server's (injected) clock; attest with wrong join tokens is limited the same
// way on the agent API, and a good join token still attests from a limited address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { AuditRecord } from '../../../src/api/types.js';
import { ManualClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logging.js';
import { openStore } from '../../../src/store/index.js';
import { flushRefusalAudit, refusalLimiterOf } from '../../../src/server/app.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { generateP256KeyPair } from '../../../src/pki/keys.js';
import { ScriptedAgent, expectedAgentId, startTestServer, type TestServer } from '../server-lifecycle/harness.js';

const BURST = 5;
const WINDOW_MS = 60_000;
const FORGED = `ward_adm_${'A'.repeat(43)}`;

interface Reply {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly body: { code?: string; message?: string };
}

async function call(url: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }), ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after') ?? undefined, body: text === '' ? {} : (JSON.parse(text) as Reply['body']) };
}

/** POST /v1/agent/attest over TLS without a client certificate, as a stranger would. */
function attest(ts: TestServer, token: string): Promise<Reply> {
  const url = new URL('/v1/agent/attest', ts.server.agentUrl);
  // A real CSR for the ID the token would yield: the refusal is the token's, not the CSR's.
  const csr = createSvidCsr({ spiffeId: expectedAgentId(token), privateKey: generateP256KeyPair().privateKey }).pem;
  const payload = JSON.stringify({ attestor: 'join_token', evidence: { token }, csr });
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', ca: [...ts.server.bundle], checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body: JSON.parse(text) as Reply['body'] }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function auditRows(ts: TestServer): Promise<readonly AuditRecord[]> {
  return (await ts.admin.listAudit({ limit: 1000 })).items;
}

const limited = (r: AuditRecord): boolean => r.action === 'auth.rate_limited';

/**
 * A server clock 1 s into a window (so a burst falls in one window), two windows behind real
 * time: certificates it issues are already valid for the TLS stack's own clock.
 */
function windowClock(): ManualClock {
  return new ManualClock(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS - 2 * WINDOW_MS + 1000);
}

async function start(clock: ManualClock): Promise<TestServer> {
  // The global bucket is made large so only the per-source bucket is under test here.
  return startTestServer('sqlite', { refusalRateLimit: { burst: BURST, refillPerSecond: 1, globalBurst: 1000, window: '1m' } }, clock);
}

test('sqlite: an unauthenticated burst gets 429 + Retry-After past the burst and a bounded, exact number of audit rows', { timeout: 30_000 }, async (t) => {
  const clock = windowClock();
  const ts = await start(clock);
  t.after(() => ts.cleanup());
  const before = (await auditRows(ts)).length;
  const N = 40;
  const replies: Reply[] = [];
  for (let i = 0; i < N; i++) replies.push(await call(`${ts.server.adminUrl}/v1/apply`, { method: 'POST', token: FORGED, body: { documents: [] } }));
  assert.deepEqual(replies.slice(0, BURST).map((r) => `${r.status} ${r.body.code}`), Array(BURST).fill('401 ERR_SERVER_UNAUTHENTICATED'));
  for (const r of replies.slice(BURST)) {
    assert.equal(r.status, 429);
    assert.equal(r.body.code, 'ERR_SERVER_RATE_LIMITED');
    assert.equal(typeof r.body.message, 'string');
    assert.equal(r.retryAfter, '1', 'one token comes back within a second');
  }
  // The valid admin token from the same address is never slowed (reads and writes).
  const ok = await call(`${ts.server.adminUrl}/v1/workloads`, { token: ts.bootstrapToken });
  assert.equal(ok.status, 200);
  assert.equal((await call(`${ts.server.adminUrl}/v1/apply`, { method: 'POST', token: ts.bootstrapToken, body: { documents: [], dryRun: true } })).status, 400, 'an admin\'s bad input is its own refusal, not rate limited');

  // Within the window: exactly BURST refusal rows; the suppressed ones are pending.
  let rows = (await auditRows(ts)).slice(before);
  assert.equal(rows.filter((r) => r.action === 'apply' && r.outcome === 'denied' && r.code === 'ERR_SERVER_UNAUTHENTICATED').length, BURST);
  assert.equal(rows.filter(limited).length, 0);
  assert.equal(await flushRefusalAudit(ts.server.context), 0, 'the window has not ended');

  // Once the window ends: one aggregate row for the source, with the count and the codes.
  clock.advance(WINDOW_MS);
  assert.equal(await flushRefusalAudit(ts.server.context), 1);
  rows = (await auditRows(ts)).slice(before);
  const agg = rows.filter(limited);
  assert.equal(agg.length, 1);
  const row = agg[0] as AuditRecord;
  assert.equal(row.outcome, 'denied');
  assert.equal(row.code, 'ERR_SERVER_RATE_LIMITED');
  assert.equal(row.actor, 'anonymous');
  assert.equal(row.resource, 'source/127.0.0.1');
  const after = row.after as { count: number; surface: string; codes: Record<string, number> };
  assert.equal(after.count, N - BURST);
  assert.equal(after.surface, 'admin');
  assert.deepEqual(after.codes, { ERR_SERVER_UNAUTHENTICATED: N - BURST });
  // Nothing in the log carries the presented token.
  assert.ok(!JSON.stringify(rows).includes(FORGED));
  // Exactly: BURST refusals, the admin's own bad request (audited under its name), one aggregate row.
  assert.equal(rows.length, BURST + 1 + 1);
  assert.deepEqual(refusalLimiterOf(ts.server.context).stats().rateLimited, { admin: N - BURST, agent: 0 });
});

test('sqlite: the bucket refills with the server clock; forbidden roles and missing tokens count too', { timeout: 30_000 }, async (t) => {
  const clock = windowClock();
  const ts = await start(clock);
  t.after(() => ts.cleanup());
  const viewer = (await ts.admin.createAdminToken({ role: 'viewer', name: 'v' })).token;
  const statuses: number[] = [];
  for (let i = 0; i < BURST; i++) statuses.push((await call(`${ts.server.adminUrl}/v1/tokens/join`, { method: 'POST', token: viewer, body: {} })).status);
  assert.deepEqual(statuses, Array(BURST).fill(403));
  const over = await call(`${ts.server.adminUrl}/v1/workloads`);
  assert.equal(over.status, 429, 'no token, same address: the bucket is empty');
  // The viewer's authorised reads keep working.
  assert.equal((await call(`${ts.server.adminUrl}/v1/workloads`, { token: viewer })).status, 200);
  // Two seconds later two refusals are answered as refusals again, the third is limited.
  clock.advance(2000);
  assert.deepEqual([
    (await call(`${ts.server.adminUrl}/v1/workloads`)).status,
    (await call(`${ts.server.adminUrl}/v1/workloads`)).status,
    (await call(`${ts.server.adminUrl}/v1/workloads`)).status,
  ], [401, 401, 429]);
  // After burst / refill seconds the source has its whole burst back.
  clock.advance(BURST * 1000);
  const again: number[] = [];
  for (let i = 0; i < BURST + 1; i++) again.push((await call(`${ts.server.adminUrl}/v1/workloads`)).status);
  assert.deepEqual(again, [...Array<number>(BURST).fill(401), 429]);
});

test('sqlite: attest with wrong join tokens is limited on the agent API; a good token still attests, once', { timeout: 30_000 }, async (t) => {
  const clock = windowClock();
  const ts = await start(clock);
  const agent = new ScriptedAgent(ts.server);
  t.after(async () => {
    agent.close();
    await ts.cleanup();
  });
  const before = (await auditRows(ts)).length;
  const N = 15;
  const replies: Reply[] = [];
  // Well-formed join tokens nobody issued (43 base64url characters).
  const wrong = Array.from({ length: N }, () => randomBytes(32).toString('base64url'));
  for (const token of wrong) replies.push(await attest(ts, token));
  assert.deepEqual(replies.slice(0, BURST).map((r) => `${r.status} ${r.body.code}`), Array(BURST).fill('401 ERR_ATTEST_FORGED'));
  assert.ok(replies.slice(BURST).every((r) => r.status === 429 && r.body.code === 'ERR_SERVER_RATE_LIMITED' && r.retryAfter === '1'));
  // A valid join token from the limited address attests (success never touches the limiter),
  // and is consumed exactly once as before.
  const token = (await ts.admin.createJoinToken({})).token;
  await agent.attest(token);
  const replay = await attest(ts, token);
  assert.equal(replay.status, 429, 'the replay is a refusal, and the address is over its limit');
  clock.advance(WINDOW_MS);
  await flushRefusalAudit(ts.server.context);
  const rows = (await auditRows(ts)).slice(before);
  assert.equal(rows.filter((r) => r.action === 'agent.attest' && r.outcome === 'denied').length, BURST);
  assert.equal(rows.filter((r) => r.action === 'agent.attest' && r.outcome === 'ok').length, 1);
  const agg = rows.filter(limited);
  assert.equal(agg.length, 1);
  assert.equal((agg[0]?.after as { count: number; surface: string }).count, N - BURST + 1);
  assert.equal((agg[0]?.after as { surface: string }).surface, 'agent');
  assert.ok(wrong.every((w) => !JSON.stringify(rows).includes(w)), 'no join token in the log');
  assert.deepEqual(refusalLimiterOf(ts.server.context).stats().rateLimited, { admin: 0, agent: N - BURST + 1 });
});

test('sqlite: pending aggregate rows are written when the server stops', { timeout: 30_000 }, async (t) => {
  const clock = windowClock();
  const ts = await start(clock);
  t.after(() => ts.cleanup());
  for (let i = 0; i < BURST + 3; i++) await call(`${ts.server.adminUrl}/v1/workloads`);
  assert.equal((await ts.server.context.store.audit.list({ limit: 1000 })).filter((r) => r.action === 'auth.rate_limited.denied').length, 0);
  await ts.server.close();
  const store = await openStore(ts.storeUrl, { clock, logger: silentLogger });
  try {
    const rows = (await store.audit.list({ limit: 1000 })).filter((r) => r.action === 'auth.rate_limited.denied');
    assert.deepEqual(rows.map((r) => [r.resource, (r.after as { count: number }).count]), [['source/127.0.0.1', 3]]);
  } finally {
    await store.close();
  }
});
