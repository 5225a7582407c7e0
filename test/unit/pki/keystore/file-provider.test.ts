import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PkiError } from '../../../../src/pki/errors.js';
import { createFileProvider } from '../../../../src/pki/keystore/file/file-provider.js';
import { createMasterKeyProvider } from '../../../../src/pki/keystore/registry.js';
import { tempDir } from '../support/forge.js';
import { masterKeyProviderContract } from './contract.js';

masterKeyProviderContract('file', async () => {
  const t = tempDir();
  let n = 0;
  return {
    withKey: async (text) => {
      const path = join(t.dir, `k${n++}`);
      writeFileSync(path, text, { mode: 0o600 });
      return createMasterKeyProvider('file', { env: {}, path });
    },
    missing: async () => createFileProvider({ env: {}, path: join(t.dir, `missing${n++}`) }),
    creates: true,
    cleanup: async () => t.cleanup(),
  };
});

test('file: created with mode 0600; a group/world-readable key file is refused', async () => {
  const t = tempDir();
  try {
    const path = join(t.dir, 'master.key');
    const p = createFileProvider({ env: {}, path });
    await p.ensure();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    chmodSync(path, 0o644);
    await assert.rejects(p.load(), (e: unknown) => e instanceof PkiError && e.code === 'ERR_MASTER_KEY_PERMISSIONS');
    await assert.rejects(p.ensure(), (e: unknown) => e instanceof PkiError && e.code === 'ERR_MASTER_KEY_PERMISSIONS');
    assert.throws(() => createFileProvider({ env: {} }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_MASTER_KEY_MISSING');
  } finally {
    t.cleanup();
  }
});
