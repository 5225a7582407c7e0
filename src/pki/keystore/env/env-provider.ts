/** `env` master-key provider: the key is in an environment variable (default WARD_MASTER_KEY). */
import { PkiError } from '../../errors.js';
import { decodeMasterKey, type MasterKeyProvider, type MasterKeyProviderOptions } from '../provider.js';

export const MASTER_KEY_ENV = 'WARD_MASTER_KEY';

export function createEnvProvider(options: MasterKeyProviderOptions, variable = MASTER_KEY_ENV): MasterKeyProvider {
  const location = `$${variable}`;
  const load = async (): Promise<Buffer> => {
    const value = options.env[variable];
    if (value === undefined || value.trim() === '') {
      throw new PkiError('ERR_MASTER_KEY_MISSING', `${location} is not set; set it to 32 random bytes in base64 (openssl rand -base64 32)`);
    }
    return decodeMasterKey(value, location);
  };
  return Object.freeze({ name: 'env', location, load, ensure: load });
}
