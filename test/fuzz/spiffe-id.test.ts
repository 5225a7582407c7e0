// Fuzz the SPIFFE ID parser (untrusted input: URI SANs, JWT `sub`, CLI, API) against an
// independent oracle written from the spec: no crash, never accept an invalid ID, never reject a valid one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSpiffeId } from '../../src/core/spiffe-id.js';
import { SpiffeIdError } from '../../src/core/errors.js';

/** The spec, restated independently of the implementation. */
function oracleValid(text: string): boolean {
  if (Buffer.byteLength(text, 'utf8') > 2048) return false;
  const m = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[a-zA-Z0-9._-]+)*)$/.exec(text);
  if (!m) return false;
  if ((m[1] as string).length > 255) return false;
  return (m[2] as string).split('/').slice(1).every((s) => s !== '.' && s !== '..');
}

function check(text: string): void {
  let accepted = false;
  try {
    const id = parseSpiffeId(text);
    accepted = true;
    assert.equal(id.toString(), text, 'accepted IDs round-trip exactly');
  } catch (e) {
    if (!(e instanceof SpiffeIdError)) throw e;
    assert.match(e.code, /^ERR_SPIFFE_ID_/);
  }
  assert.equal(accepted, oracleValid(text), `parser and spec disagree on ${JSON.stringify(text.slice(0, 120))}`);
}

const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
const pathChar = fc.constantFrom(...'abcXYZ0189.-_'.split(''));
const nasty = fc.constantFrom(...'/:@?#%.. \t\n\u0000ÄA/Z%2F'.split(''), '..', '//', 'spiffe://', 'SPIFFE', '%2e', '\u{1F600}');
const validId = fc.record({
  td: fc.string({ unit: tdChar, minLength: 1, maxLength: 40 }),
  segs: fc.array(fc.string({ unit: pathChar, minLength: 1, maxLength: 12 }), { maxLength: 6 }),
}).map(({ td, segs }) => `spiffe://${td}${segs.map((s) => `/${s}`).join('')}`);

test('random strings: no crash, decision matches the spec oracle', () => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), check), { numRuns: 2000, seed: 1 });
  fc.assert(fc.property(fc.string({ maxLength: 80 }).map((s) => `spiffe://${s}`), check), { numRuns: 2000 });
});

test('generated valid IDs are accepted (where the oracle agrees)', () => {
  fc.assert(fc.property(validId, check), { numRuns: 2000 });
});

test('mutated valid IDs: insertions, deletions and replacements are judged exactly as the spec says', () => {
  const mutated = fc.tuple(validId, fc.nat(), fc.nat({ max: 3 }), fc.oneof(nasty, pathChar, tdChar)).map(([id, pos, n, piece]) => {
    const at = pos % (id.length + 1);
    return id.slice(0, at) + piece + id.slice(Math.min(id.length, at + n));
  });
  fc.assert(fc.property(mutated, check), { numRuns: 3000 });
});

test('long inputs around the 2048-byte and 255-byte limits', () => {
  fc.assert(fc.property(fc.integer({ min: 2000, max: 2100 }), fc.integer({ min: 250, max: 260 }), (total, td) => {
    const head = `spiffe://${'t'.repeat(td)}/`;
    check(head + 'p'.repeat(Math.max(1, total - head.length)));
  }), { numRuns: 200 });
});
