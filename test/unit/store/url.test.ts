import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStoreUrl, StoreError } from '../../../src/store/index.js';

test('parseStoreUrl: sqlite forms', () => {
  assert.deepEqual(parseStoreUrl(':memory:'), { dialect: 'sqlite', path: ':memory:' });
  assert.deepEqual(parseStoreUrl('sqlite::memory:'), { dialect: 'sqlite', path: ':memory:' });
  assert.deepEqual(parseStoreUrl('sqlite:///var/lib/ward/ward.db'), { dialect: 'sqlite', path: '/var/lib/ward/ward.db' });
  assert.deepEqual(parseStoreUrl('sqlite:data/ward.db'), { dialect: 'sqlite', path: 'data/ward.db' });
});

test('parseStoreUrl: postgres with schema and timeout, other params passed through', () => {
  const loc = parseStoreUrl('postgres://ward:s3cret@db.internal:6432/ward?schema=ward_prod&connect_timeout=2&sslmode=require');
  assert.equal(loc.dialect, 'postgres');
  if (loc.dialect !== 'postgres') return;
  assert.equal(loc.schema, 'ward_prod');
  assert.equal(loc.connectTimeoutMs, 2000);
  assert.equal(loc.connectionString, 'postgres://ward:s3cret@db.internal:6432/ward?sslmode=require');
  const def = parseStoreUrl('postgresql://h/db');
  assert.ok(def.dialect === 'postgres' && def.schema === 'public' && def.connectTimeoutMs === 5000);
});

test('parseStoreUrl: bad URLs give ERR_STORE_URL_INVALID without echoing secrets', () => {
  for (const bad of ['', 'mysql://x', 'sqlite:', 'sqlite://host/path', 'postgres://', 'postgres://u:hunter2@h/db?schema=Bad-Name',
    'postgres://u:hunter2@h/db?schema=x;drop', 'postgres://h/db?connect_timeout=abc', 'postgres://h/db?connect_timeout=0']) {
    assert.throws(() => parseStoreUrl(bad), (e: unknown) => e instanceof StoreError && e.code === 'ERR_STORE_URL_INVALID' && !e.message.includes('hunter2'), bad);
  }
});
