// The CA directory lock under contention: a stale lock (its owner is gone) is taken over by
// exactly one contender, never by two at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PkiError } from '../../../../src/pki/errors.js';
import { LOCK_FILE, withCaDirLock } from '../../../../src/pki/keystore/ca-dir.js';
import { tempDir } from '../support/forge.js';

/** A pid no process has (above Linux's largest pid_max). */
const DEAD_PID = 99_999_999;

const yieldTurns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

test('contenders racing to take over a stale lock: at most one holds it at a time', async () => {
  const t = tempDir('ward-calock-');
  try {
    for (let round = 0; round < 25; round++) {
      writeFileSync(join(t.dir, LOCK_FILE), String(DEAD_PID));
      let inside = 0;
      let most = 0;
      let entered = 0;
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => withCaDirLock(t.dir, async () => {
        entered++;
        most = Math.max(most, ++inside);
        await yieldTurns(20);
        inside--;
      })));
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof PkiError && r.reason.code === 'ERR_CA_LOCKED', String(r.reason));
      }
      assert.equal(most, 1, `round ${round}: ${most} contenders held the lock at once`);
      assert.ok(entered >= 1, `round ${round}: nobody took over the stale lock`);
    }
  } finally {
    t.cleanup();
  }
});
