// Expired credentials, with the server's clock moved instead of waiting: an expired admin token
// and an expired join token are refused with their codes, audited, and store nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WardClient } from '../../../src/api/client.js';
import { ServerReplyError } from '../../../src/api/errors.js';
import { ManualClock } from '../../../src/core/clock.js';
import { ScriptedAgent, startTestServer } from './harness.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : String(e);
  }
}

test('expired admin and join tokens: 401 with a code, audited, nothing stored', { timeout: 30_000 }, async (t) => {
  const clock = new ManualClock(Date.now());
  const ts = await startTestServer('sqlite', {}, clock);
  t.after(() => ts.cleanup());
  const { admin, server } = ts;
  const short = await admin.createAdminToken({ role: 'operator', name: 'short', ttlSeconds: 60 });
  const op = new WardClient({ baseUrl: server.adminUrl, token: short.token });
  t.after(() => op.close());
  assert.equal(await code(op.listEntries()), 'ok');
  const jt = await admin.createJoinToken({});
  const version = await server.context.store.changes.latest();

  clock.advance(11 * 60_000);
  assert.equal(await code(op.listEntries()), '401 ERR_SERVER_UNAUTHENTICATED');
  const agent = new ScriptedAgent(server);
  t.after(() => agent.close());
  assert.equal(await code(agent.attest(jt.token)), '401 ERR_ATTEST_EXPIRED');
  assert.equal(await code(agent.attest('A'.repeat(43))), '401 ERR_ATTEST_FORGED');
  assert.equal(await server.context.store.changes.latest(), version, 'nothing stored');
  assert.equal((await admin.listAgents()).items.length, 0);

  const audit = (await admin.listAudit({ limit: 100 })).items.map((r) => `${r.action}:${r.outcome}:${r.code ?? ''}`);
  assert.ok(audit.includes('GET /v1/entries:denied:ERR_SERVER_UNAUTHENTICATED'), audit.join(' '));
  assert.ok(audit.includes('agent.attest:denied:ERR_ATTEST_EXPIRED'));
  assert.ok(audit.includes('agent.attest:denied:ERR_ATTEST_FORGED'));
});
