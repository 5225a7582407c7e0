// Fuzz: random and mutated envelopes never crash the verifier and never verify; failures are coded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { ProvenanceVerifier, ProvenanceError, PROVENANCE_ERRORS } from '../../src/platforms/provenance/index.js';
import { envelope, makeKey, statement } from '../unit/platforms/provenance/sign.js';

const CODES = new Set(Object.keys(PROVENANCE_ERRORS));
const key = makeKey('ed25519');
const verifier = new ProvenanceVerifier({ keys: [{ keyid: 'k', publicKey: key.publicPem }] });
const good = envelope(statement('slsa-v1-github-container.statement.json'), [{ key, keyid: 'k' }]);
const goodText = JSON.stringify(good);

function mustFail(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ProvenanceError && CODES.has(e.code), `uncoded failure: ${String(e)}`);
    return;
  }
  assert.fail('a mutated or random envelope verified');
}

test('random input never verifies', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => mustFail(() => verifier.verify(JSON.stringify(v), 0))), { numRuns: 300 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => mustFail(() => verifier.verify(b, 0))), { numRuns: 200 });
});

test('any change to the signed payload bytes breaks verification', () => {
  const payload = Buffer.from(good['payload'] as string, 'base64');
  fc.assert(fc.property(fc.nat(payload.length - 1), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
    const p = Buffer.from(payload);
    p[pos] = (p[pos]! + delta) % 256;
    mustFail(() => verifier.verify({ ...good, payload: p.toString('base64') }, 0));
  }), { numRuns: 300 });
});

test('byte mutations of the envelope text are rejected with a code or (if they miss the signed parts) still verify the same facts', () => {
  const expected = verifier.verify(goodText, 0).attributes;
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(goodText.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (muts) => {
    const bytes = new TextEncoder().encode(goodText);
    for (const [pos, val] of muts) bytes[pos] = val;
    try {
      const r = verifier.verify(bytes, 0);
      assert.deepEqual(r.attributes, expected); // e.g. a mutation inside the keyid hint
    } catch (e) {
      assert.ok(e instanceof ProvenanceError && CODES.has(e.code), `uncoded failure: ${String(e)}`);
    }
  }), { numRuns: 400 });
});
