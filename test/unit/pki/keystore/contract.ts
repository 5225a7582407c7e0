/**
 * The master-key provider contract (src/pki/keystore/provider.ts), run by every implementation's
 * test file. A fixture describes how to put the provider in each situation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PkiError } from '../../../../src/pki/errors.js';
import type { MasterKeyProvider } from '../../../../src/pki/keystore/provider.js';

export interface ProviderFixture {
  /** A provider whose storage holds `key` written as `text` (base64 or hex). */
  withKey(text: string): Promise<MasterKeyProvider>;
  /** A provider with no key at all. */
  missing(): Promise<MasterKeyProvider>;
  /** Whether ensure() on a missing key creates one. */
  readonly creates: boolean;
  cleanup(): Promise<void>;
}

const isCode = (code: string) => (e: unknown): boolean => {
  assert.ok(e instanceof PkiError, String(e));
  assert.equal(e.code, code);
  return true;
};

export function masterKeyProviderContract(name: string, makeFixture: () => Promise<ProviderFixture>): void {
  test(`${name}: load returns the 32-byte key, the same on every call, from base64 or hex`, async () => {
    const f = await makeFixture();
    try {
      const key = randomBytes(32);
      for (const text of [key.toString('base64'), key.toString('hex'), `  ${key.toString('base64')}\n`]) {
        const p = await f.withKey(text);
        assert.deepEqual(await p.load(), key);
        assert.deepEqual(await p.load(), key);
        assert.deepEqual(await p.ensure(), key, 'ensure on an existing key is load');
      }
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: a missing key is ERR_MASTER_KEY_MISSING on load`, async () => {
    const f = await makeFixture();
    try {
      await assert.rejects((await f.missing()).load(), isCode('ERR_MASTER_KEY_MISSING'));
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: ensure creates a fresh random key only if the provider can`, async () => {
    const f = await makeFixture();
    try {
      const p = await f.missing();
      if (f.creates) {
        const created = await p.ensure();
        assert.equal(created.length, 32);
        assert.deepEqual(await p.load(), created);
        assert.notDeepEqual(await (await f.missing()).ensure(), created, 'each new key is random');
      } else {
        await assert.rejects(p.ensure(), isCode('ERR_MASTER_KEY_MISSING'));
      }
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: a malformed key is ERR_MASTER_KEY_INVALID and the message does not echo it`, async () => {
    const f = await makeFixture();
    try {
      for (const text of ['short', randomBytes(16).toString('base64'), randomBytes(33).toString('hex'), `${'z'.repeat(43)}!`]) {
        const p = await f.withKey(text);
        await assert.rejects(p.load(), (e: unknown) => {
          isCode('ERR_MASTER_KEY_INVALID')(e);
          assert.ok(!(e as Error).message.includes(text.trim()), 'no key material in messages');
          return true;
        });
      }
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: location names where the key lives and never holds the key`, async () => {
    const f = await makeFixture();
    try {
      const key = randomBytes(32).toString('base64');
      const p = await f.withKey(key);
      assert.equal(p.name, name);
      assert.ok(p.location.length > 0 && !p.location.includes(key));
    } finally {
      await f.cleanup();
    }
  });
}
