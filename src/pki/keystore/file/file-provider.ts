/**
 * `file` master-key provider: the key is base64 text in a file that must be mode 0600 (owner
 * only). `ensure()` creates it with 32 random bytes, exclusively and with mode 0600 from the start.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { PkiError } from '../../errors.js';
import { decodeMasterKey, type MasterKeyProvider, type MasterKeyProviderOptions } from '../provider.js';

export function createFileProvider(options: MasterKeyProviderOptions): MasterKeyProvider {
  const path = options.path;
  if (path === undefined || path === '') throw new PkiError('ERR_MASTER_KEY_MISSING', 'the file master-key provider needs a key file path');
  const load = async (): Promise<Buffer> => {
    let mode: number;
    try {
      mode = (await stat(path)).mode;
    } catch (error) {
      throw new PkiError('ERR_MASTER_KEY_MISSING', `master key file ${path} does not exist`, { cause: error });
    }
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new PkiError('ERR_MASTER_KEY_PERMISSIONS', `master key file ${path} has mode ${(mode & 0o777).toString(8)}; chmod 600 it`);
    }
    return decodeMasterKey(await readFile(path, 'utf8'), path);
  };
  const ensure = async (): Promise<Buffer> => {
    const key = randomBytes(32);
    let handle;
    try {
      handle = await open(path, 'wx', 0o600);
    } catch (error) {
      key.fill(0);
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return load();
      throw new PkiError('ERR_MASTER_KEY_MISSING', `cannot create master key file ${path}`, { cause: error });
    }
    try {
      await handle.writeFile(`${key.toString('base64')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return key;
  };
  return Object.freeze({ name: 'file', location: path, load, ensure });
}
