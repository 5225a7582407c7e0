import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { KeySealer, masterKeyId } from '../../../src/pki/envelope.js';
import { PkiError } from '../../../src/pki/errors.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof PkiError);
    return e.code;
  }
};

test('seal/open round-trips and never stores the plaintext', () => {
  const sealer = new KeySealer(randomBytes(32));
  const secret = Buffer.from('-----BEGIN PRIVATE KEY----- very secret');
  const box = sealer.seal(secret, 'authority/a/intermediate');
  assert.equal(box.alg, 'A256GCM-envelope');
  assert.equal(box.kek, sealer.keyId);
  assert.ok(!JSON.stringify(box).includes('secret'));
  assert.ok(!JSON.stringify(box).includes(secret.toString('base64')));
  assert.deepEqual(sealer.open(box, 'authority/a/intermediate'), secret);
  // Fresh DEK and IV each time.
  const box2 = sealer.seal(secret, 'authority/a/intermediate');
  assert.notEqual(box2.wrappedDek, box.wrappedDek);
  assert.notEqual(box2.ciphertext, box.ciphertext);
});

test('wrong master key, other slot, or tampering fail closed with stable codes', () => {
  const key = randomBytes(32);
  const sealer = new KeySealer(key);
  const box = sealer.seal(Buffer.from('k'), 'slot-a');
  assert.equal(codeOf(() => new KeySealer(randomBytes(32)).open(box, 'slot-a')), 'ERR_MASTER_KEY_MISMATCH');
  assert.equal(codeOf(() => sealer.open(box, 'slot-b')), 'ERR_KEY_SEALED_INVALID');
  for (const field of ['ciphertext', 'tag', 'iv', 'wrappedDek', 'dekTag', 'dekIv'] as const) {
    const raw = Buffer.from(box[field], 'base64');
    raw[0] = (raw[0] as number) ^ 1;
    assert.equal(codeOf(() => sealer.open({ ...box, [field]: raw.toString('base64') }, 'slot-a')), 'ERR_KEY_SEALED_INVALID', field);
  }
  // A forged kek id pointing at this sealer still cannot open a box sealed under another key.
  const other = new KeySealer(randomBytes(32)).seal(Buffer.from('k'), 'slot-a');
  assert.equal(codeOf(() => sealer.open({ ...other, kek: sealer.keyId }, 'slot-a')), 'ERR_KEY_SEALED_INVALID');
  assert.equal(codeOf(() => sealer.open({ ...box, alg: 'none' as never }, 'slot-a')), 'ERR_KEY_SEALED_INVALID');
  assert.equal(codeOf(() => new KeySealer(randomBytes(16))), 'ERR_MASTER_KEY_INVALID');
  assert.equal(masterKeyId(key), sealer.keyId);
  assert.equal(sealer.keyId.length, 16);
});
