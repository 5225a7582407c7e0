/**
 * AES-256-GCM envelope encryption of private keys. Each key gets a fresh 256-bit data key
 * (DEK); the DEK is wrapped under the master key (KEK) from a keystore provider. The sealed
 * box names its KEK by a one-way id so a wrong master key is reported as such, and both layers
 * bind the caller's `aad` (which slot the key belongs to) so ciphertexts cannot be swapped.
 * Pure: the master key is handed in; reading it is the keystore's job (src/pki/keystore/).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { PkiError } from './errors.js';

export const MASTER_KEY_BYTES = 32;

/** A sealed secret as stored in ca.json / a database row. All binary fields are base64. */
export interface SealedBox {
  readonly alg: 'A256GCM-envelope';
  /** Id of the master key that wraps the DEK (see {@link masterKeyId}). */
  readonly kek: string;
  readonly wrappedDek: string;
  readonly dekIv: string;
  readonly dekTag: string;
  readonly iv: string;
  readonly tag: string;
  readonly ciphertext: string;
}

/** A stable, non-reversible id of a master key (16 hex chars). */
export function masterKeyId(masterKey: Uint8Array): string {
  return createHash('sha256').update('ward.master-key-id.v1\0').update(masterKey).digest('hex').slice(0, 16);
}

function gcmSeal(key: Uint8Array, plaintext: Uint8Array, aad: Buffer): { iv: Buffer; tag: Buffer; ct: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ct };
}

function gcmOpen(key: Uint8Array, iv: Buffer, tag: Buffer, ct: Buffer, aad: Buffer): Buffer {
  if (iv.length !== 12 || tag.length !== 16) throw new Error('bad iv/tag length');
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

/**
 * Seals and opens secrets under one master key.
 *
 * @example
 * const sealer = new KeySealer(masterKey);
 * const box = sealer.seal(Buffer.from(pkcs8), 'authority/3f2a/intermediate');
 * sealer.open(box, 'authority/3f2a/intermediate');
 */
export class KeySealer {
  readonly #masterKey: Buffer;
  /** Id of the master key this sealer uses. */
  readonly keyId: string;

  constructor(masterKey: Uint8Array) {
    if (masterKey.length !== MASTER_KEY_BYTES) {
      throw new PkiError('ERR_MASTER_KEY_INVALID', `master key must be ${MASTER_KEY_BYTES} bytes`);
    }
    this.#masterKey = Buffer.from(masterKey);
    this.keyId = masterKeyId(this.#masterKey);
  }

  seal(plaintext: Uint8Array, aad: string): SealedBox {
    const aadBytes = Buffer.from(`ward.sealed.v1\0${aad}`);
    const dek = randomBytes(32);
    try {
      const data = gcmSeal(dek, plaintext, aadBytes);
      const wrapped = gcmSeal(this.#masterKey, dek, Buffer.concat([aadBytes, Buffer.from('\0dek')]));
      return {
        alg: 'A256GCM-envelope',
        kek: this.keyId,
        wrappedDek: wrapped.ct.toString('base64'),
        dekIv: wrapped.iv.toString('base64'),
        dekTag: wrapped.tag.toString('base64'),
        iv: data.iv.toString('base64'),
        tag: data.tag.toString('base64'),
        ciphertext: data.ct.toString('base64'),
      };
    } finally {
      dek.fill(0);
    }
  }

  /** Opens a box sealed for `aad`; throws ERR_MASTER_KEY_MISMATCH or ERR_KEY_SEALED_INVALID. */
  open(box: SealedBox, aad: string): Buffer {
    if (box === null || typeof box !== 'object' || box.alg !== 'A256GCM-envelope') {
      throw new PkiError('ERR_KEY_SEALED_INVALID', 'sealed key has an unknown format');
    }
    if (box.kek !== this.keyId) {
      throw new PkiError('ERR_MASTER_KEY_MISMATCH', `key was sealed under master key ${String(box.kek)}, not ${this.keyId}`);
    }
    const aadBytes = Buffer.from(`ward.sealed.v1\0${aad}`);
    let dek: Buffer | undefined;
    try {
      const b = (s: string): Buffer => Buffer.from(String(s), 'base64');
      dek = gcmOpen(this.#masterKey, b(box.dekIv), b(box.dekTag), b(box.wrappedDek), Buffer.concat([aadBytes, Buffer.from('\0dek')]));
      return gcmOpen(dek, b(box.iv), b(box.tag), b(box.ciphertext), aadBytes);
    } catch (error) {
      throw new PkiError('ERR_KEY_SEALED_INVALID', 'sealed key failed authentication (tampered, or sealed for another slot)', { cause: error });
    } finally {
      dek?.fill(0);
    }
  }
}
