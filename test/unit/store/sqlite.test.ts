import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../../src/store/index.js';
import { storeContract, rejectsWith } from './contract.js';
import { sqliteHarness } from './harness.js';

storeContract(sqliteHarness);

test('sqlite: a path in a missing directory is ERR_STORE_UNAVAILABLE', async () => {
  await rejectsWith(openStore('sqlite:///nonexistent-ward-dir/sub/ward.db'), 'ERR_STORE_UNAVAILABLE');
});

test('sqlite: a file that is not a database is ERR_STORE_UNAVAILABLE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-store-'));
  try {
    writeFileSync(join(dir, 'junk.db'), 'this is not sqlite '.repeat(100));
    await rejectsWith(openStore(`sqlite://${join(dir, 'junk.db')}`), 'ERR_STORE_UNAVAILABLE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: file databases use WAL; :memory: works', async () => {
  const h = await sqliteHarness();
  try {
    assert.deepEqual(await h.raw('pragma journal_mode'), [{ journal_mode: 'wal' }]);
  } finally {
    await h.cleanup();
  }
  const mem = await openStore(':memory:');
  await mem.policies.put({ name: 'm', yaml: '', parsed: {} });
  assert.equal((await mem.policies.list()).length, 1);
  await mem.close();
});
