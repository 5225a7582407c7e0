import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEnvProvider, MASTER_KEY_ENV } from '../../../../src/pki/keystore/env/env-provider.js';
import { createMasterKeyProvider } from '../../../../src/pki/keystore/registry.js';
import { PkiError } from '../../../../src/pki/errors.js';
import { masterKeyProviderContract } from './contract.js';

masterKeyProviderContract('env', async () => ({
  withKey: async (text) => createMasterKeyProvider('env', { env: { [MASTER_KEY_ENV]: text } }),
  missing: async () => createEnvProvider({ env: {} }),
  creates: false,
  cleanup: async () => undefined,
}));

test('env: reads only the injected environment, and an empty value counts as missing', async () => {
  await assert.rejects(createEnvProvider({ env: { [MASTER_KEY_ENV]: '  ' } }).load(), (e: unknown) => e instanceof PkiError && e.code === 'ERR_MASTER_KEY_MISSING');
  assert.throws(() => createMasterKeyProvider('vault', { env: {} }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_KEY_PROVIDER_UNKNOWN');
  assert.throws(() => createMasterKeyProvider('__proto__', { env: {} }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_KEY_PROVIDER_UNKNOWN');
});
