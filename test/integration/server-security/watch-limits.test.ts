// Watch stream resource limits and lifetime, on both stores: one agent cannot open more than
// maxWatchStreamsPerAgent streams (others are unaffected, and a closed stream frees its slot),
// and a stream ends once the SVID that opened it has expired instead of carrying policy,
// attributes and revocations to a holder of a dead certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerReplyError } from '../../../src/api/errors.js';
import type { WatchMessage } from '../../../src/api/types.js';
import { ManualClock } from '../../../src/core/clock.js';
import { ScriptedAgent, TRUST_DOMAIN, startTestServer } from '../server-lifecycle/harness.js';

const policy = (name: string) => ({
  apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name },
  spec: { subject: { spiffeIds: [`spiffe://${TRUST_DOMAIN}/shop/payments`] }, action: 'ALLOW', ingress: [{ from: [{ spiffeIds: [`spiffe://${TRUST_DOMAIN}/shop/orders`] }], to: [{ ports: [8443] }] }] },
});

const isPolicies = (m: WatchMessage): m is Extract<WatchMessage, { type: 'policies' }> => m.type === 'policies';

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: at most maxWatchStreamsPerAgent watch streams per agent`, { timeout: 30_000 }, async (t) => {
    const ts = await startTestServer(kind, { maxWatchStreamsPerAgent: 2 });
    const a = new ScriptedAgent(ts.server);
    const b = new ScriptedAgent(ts.server);
    const sessions: ReturnType<ScriptedAgent['watch']>[] = [];
    t.after(async () => {
      for (const s of sessions) await s.stop();
      a.close();
      b.close();
      await ts.cleanup();
    });
    await a.attest((await ts.admin.createJoinToken({})).token);
    await b.attest((await ts.admin.createJoinToken({})).token);
    for (let i = 0; i < 2; i++) {
      const s = a.watch();
      sessions.push(s);
      await s.opened;
    }
    const third = a.watch();
    sessions.push(third);
    const refused = await Promise.race([third.done.then(() => 'ended without refusal', (e: unknown) => (e instanceof ServerReplyError ? `${e.status} ${e.code}` : String(e))), third.opened.then(() => 'opened')]);
    assert.equal(refused, '429 ERR_SERVER_TOO_MANY_STREAMS');
    assert.equal(ts.server.context.hub.connectionsOf(a.agentId), 2);
    // Another agent is not affected.
    const other = b.watch();
    sessions.push(other);
    await other.opened;
    // Closing one stream frees its slot.
    await (sessions[0] as (typeof sessions)[number]).stop();
    for (let i = 0; i < 100 && ts.server.context.hub.connectionsOf(a.agentId) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    const again = a.watch();
    sessions.push(again);
    await again.opened;
    const audit = (await ts.admin.listAudit({ limit: 1000 })).items;
    assert.ok(audit.some((r) => r.action === 'agent.watch' && r.outcome === 'denied' && r.code === 'ERR_SERVER_TOO_MANY_STREAMS'), 'the refusal is audited');
  });

  test(`${kind}: a watch stream ends once the SVID that opened it expires`, { timeout: 30_000 }, async (t) => {
    const clock = new ManualClock(Date.now());
    const ts = await startTestServer(kind, {}, clock);
    const agent = new ScriptedAgent(ts.server);
    t.after(async () => {
      agent.close();
      await ts.cleanup();
    });
    await agent.attest((await ts.admin.createJoinToken({})).token);
    const session = agent.watch();
    t.after(() => session.stop());
    await session.opened;
    await ts.admin.apply([policy('before-expiry')]);
    await session.waitFor((m): m is WatchMessage => isPolicies(m) && m.policies.some((p) => p.name === 'before-expiry'));
    const expiresAt = agent.svid?.expiresAt as number;
    clock.set(expiresAt + 1);
    await ts.admin.apply([policy('after-expiry')]);
    const ended = await Promise.race([session.done.then(() => 'ended', () => 'ended'), new Promise((r) => setTimeout(() => r('still open'), 3000))]);
    assert.equal(ended, 'ended');
    assert.ok(!session.messages.some(({ msg }) => isPolicies(msg) && msg.policies.some((p) => p.name === 'after-expiry')), 'nothing is sent after the SVID expired');
  });
}
