// Attestation state lives in the store: a join token issued before a restart is redeemed once
// after it (and replaying it after another restart is ERR_ATTEST_REPLAYED, not "unknown"); the
// maintenance job prunes expired tokens, after which they are unknown (ERR_ATTEST_FORGED).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerReplyError } from '../../../src/api/errors.js';
import { WardClient } from '../../../src/api/client.js';
import { ManualClock } from '../../../src/core/clock.js';
import { parseServerConfig } from '../../../src/server/config.js';
import { startServer, type RunningServer } from '../../../src/server/server.js';
import { ScriptedAgent, TRUST_DOMAIN, opensslVerify, startTestServer, type TestServer } from './harness.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : String(e);
  }
}

function restart(ts: TestServer, clock?: ManualClock): Promise<RunningServer> {
  const config = parseServerConfig({ dataDir: ts.dir, store: ts.storeUrl, trustDomain: TRUST_DOMAIN, adminListen: '127.0.0.1:0', agentListen: '127.0.0.1:0' });
  return startServer({ config, ...(clock ? { clock } : {}) });
}

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: a join token issued before a restart is redeemed once after it`, { timeout: 60_000 }, async (t) => {
    const ts = await startTestServer(kind);
    const running: RunningServer[] = [];
    const agents: ScriptedAgent[] = [];
    t.after(async () => {
      for (const a of agents) a.close();
      for (const s of running) await s.close();
      await ts.cleanup();
    });
    const jt = await ts.admin.createJoinToken({ attributes: { 'host.name': 'vm-restart' } });
    const unused = await ts.admin.createJoinToken({});
    await ts.server.close();

    const second = await restart(ts);
    running.push(second);
    const agent = new ScriptedAgent(second);
    agents.push(agent);
    const res = await agent.attest(jt.token);
    assert.match(opensslVerify(ts.dir, res.bundle, res.svid.certChain), /OK/);
    await second.close();

    const third = await restart(ts);
    running.push(third);
    const replay = new ScriptedAgent(third);
    agents.push(replay);
    assert.equal(await code(replay.attest(jt.token)), '401 ERR_ATTEST_REPLAYED');
    const other = new ScriptedAgent(third);
    agents.push(other);
    assert.equal(await code(other.attest(unused.token)), 'ok', 'a token never used survives two restarts');
    const admin = new WardClient({ baseUrl: third.adminUrl, token: ts.bootstrapToken });
    t.after(() => admin.close());
    assert.deepEqual((await admin.listAgents()).items.map((a) => a.agentId).sort(), [agent.agentId, other.agentId].sort());
    const audit = (await admin.listAudit({ limit: 100 })).items.map((r) => `${r.action}:${r.outcome}:${r.code ?? ''}`);
    assert.ok(audit.includes('agent.attest:denied:ERR_ATTEST_REPLAYED'), audit.join('\n'));
  });

  test(`${kind}: the maintenance job prunes expired join tokens; a pruned token is unknown`, { timeout: 60_000 }, async (t) => {
    const clock = new ManualClock(Date.now());
    const ts = await startTestServer(kind, {}, clock);
    t.after(() => ts.cleanup());
    const expired = await ts.admin.createJoinToken({});
    const live = await ts.admin.createJoinToken({ ttlSeconds: 3600 });
    clock.advance(11 * 60_000);
    const run = await ts.server.maintenance.runOnce();
    assert.ok(run.ran, 'the first run is due');
    assert.equal(run.result.attestationCredentials, 1);
    assert.deepEqual(await ts.server.maintenance.runOnce(), { ran: false, reason: 'recent' });
    const agent = new ScriptedAgent(ts.server);
    t.after(() => agent.close());
    assert.equal(await code(agent.attest(expired.token)), '401 ERR_ATTEST_FORGED');
    assert.equal(await code(agent.attest(live.token)), 'ok');
  });
}
