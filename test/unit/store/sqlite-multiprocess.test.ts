// Several processes on one SQLite file (WAL, BEGIN IMMEDIATE, busy timeout): a join token is
// consumed exactly once, an attestation credential is redeemed exactly once, one-time evidence
// is consumed exactly once, the singleton maintenance job runs once, and every change gets its
// own version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { newSecretToken } from '../../../src/store/index.js';
import { sqliteHarness } from './harness.js';

interface Outcome { won: boolean; redeemed: string; consumed: boolean; ran: boolean }

function runWriter(path: string, token: string, n: number, tag: string, now: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'sqlite-writer.ts'), path, token, String(n), tag, String(now)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as Outcome);
      else reject(new Error(`writer ${tag} exited ${code}: ${err}`));
    });
  });
}

test('sqlite: three processes race for one join token and write 20 policies each', { timeout: 60_000 }, async () => {
  const h = await sqliteHarness();
  try {
    const token = newSecretToken();
    await h.store.joinTokens.create({ token, ttlMs: 600_000 });
    await h.store.attestation.putCredential('join_token', createHash('sha256').update(token).digest('hex'), { expiresAt: h.clock.now() + 600_000, data: {} });
    const path = h.url.slice('sqlite://'.length);
    const results = await Promise.all(['a', 'b', 'c'].map((tag) => runWriter(path, token, 20, tag, h.clock.now())));
    assert.equal(results.filter((r) => r.won).length, 1);
    assert.deepEqual(results.map((r) => r.redeemed).sort(), ['redeemed', 'used', 'used']);
    assert.equal(results.filter((r) => r.consumed).length, 1);
    assert.equal(results.filter((r) => r.ran).length, 1);
    assert.equal((await h.store.policies.list()).length, 60);
    const { changes } = await h.store.changes.since(0, 1000);
    assert.equal(changes.length, 60);
    assert.equal(new Set(changes.map((c) => c.version)).size, 60);
  } finally {
    await h.cleanup();
  }
});
