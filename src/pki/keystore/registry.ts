/** The catalog of built-in master-key providers: one line per implementation. */
import { PkiError } from '../errors.js';
import { createEnvProvider } from './env/env-provider.js';
import { createFileProvider } from './file/file-provider.js';
import type { MasterKeyProvider, MasterKeyProviderOptions } from './provider.js';

export type MasterKeyProviderFactory = (options: MasterKeyProviderOptions) => MasterKeyProvider;

export const MASTER_KEY_PROVIDERS: Readonly<Record<string, MasterKeyProviderFactory>> = Object.freeze({
  env: (options) => createEnvProvider(options),
  file: createFileProvider,
});

/**
 * Builds a provider by name.
 *
 * @example const provider = createMasterKeyProvider('file', { env: process.env, path: '/etc/ward/master.key' });
 */
export function createMasterKeyProvider(name: string, options: MasterKeyProviderOptions): MasterKeyProvider {
  const factory = Object.hasOwn(MASTER_KEY_PROVIDERS, name) ? MASTER_KEY_PROVIDERS[name] : undefined;
  if (!factory) throw new PkiError('ERR_KEY_PROVIDER_UNKNOWN', `no master key provider ${JSON.stringify(name)}; known: ${Object.keys(MASTER_KEY_PROVIDERS).join(', ')}`);
  return factory(options);
}
