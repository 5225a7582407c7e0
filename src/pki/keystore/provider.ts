/**
 * The master-key provider plug-in point: where the 256-bit key that wraps every CA key comes
 * from (docs/reference/pki.md#master-key-providers, docs/adr/0013).
 *
 * Contract (test/unit/pki/keystore/contract.ts runs it against every implementation):
 * - `load()` resolves to exactly {@link MASTER_KEY_BYTES} bytes, the same bytes on every call
 *   for the same configuration, or rejects with a PkiError: `ERR_MASTER_KEY_MISSING` when there
 *   is no key, `ERR_MASTER_KEY_INVALID` when it is malformed, `ERR_MASTER_KEY_PERMISSIONS` when
 *   its storage is exposed. It never logs or returns the key in an error message.
 * - `ensure()` is `load()`, except that a provider able to create keys creates a fresh random
 *   key when none exists (used by `ward ca init`); others behave exactly like `load()`.
 * - Providers hold no key material between calls; the caller zeroes what it received when done.
 */
import { MASTER_KEY_BYTES } from '../envelope.js';
import { PkiError } from '../errors.js';

export interface MasterKeyProvider {
  /** Registry name (`env`, `file`). */
  readonly name: string;
  /** Where the key lives, for messages (`$WARD_MASTER_KEY`, a file path); never the key. */
  readonly location: string;
  load(): Promise<Buffer>;
  ensure(): Promise<Buffer>;
}

/** Options every provider factory receives; each uses what it needs. */
export interface MasterKeyProviderOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** For `file`: the key file path. */
  readonly path?: string;
}

/**
 * Decodes a master key written as base64 (44 chars) or hex (64 chars), surrounding whitespace ignored.
 *
 * @example decodeMasterKey(randomBytes(32).toString('base64'))
 */
export function decodeMasterKey(text: string, location: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(t) || /^[A-Za-z0-9_-]{43}$/.test(t)) key = Buffer.from(t, t.endsWith('=') ? 'base64' : 'base64url');
  if (key?.length !== MASTER_KEY_BYTES) {
    throw new PkiError('ERR_MASTER_KEY_INVALID', `master key at ${location} must be 32 bytes written as base64 or hex`);
  }
  return key;
}
