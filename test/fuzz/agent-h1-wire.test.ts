// Fuzz the lean HTTP/1.1 head parser and the chunked scanner with hostile and mutated input:
// they never throw, every accepted head satisfies the grammar (no CR/LF/NUL can reach a
// forwarded field), and the chunked end is found whatever the split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedScanner, parseRequestHead, parseResponseHead } from '../../src/agent/proxy/http/h1-wire.js';

const piece = fc.constantFrom(
  'GET', 'POST', 'HEAD', 'get', ' ', '  ', '/', '/public/', '?a=1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.1 200 OK', '\r\n', '\n', '\r', '\r\n\r\n',
  'Host: o', 'host:o', 'Host: p', 'Content-Length: 5', 'Content-Length: 05', 'Content-Length: -1', 'Content-Length: 5, 6',
  'Transfer-Encoding: chunked', 'Transfer-Encoding : chunked', 'Connection: close', 'Connection: x-a', 'X-A: b', ':', '\t', '\u0000', '\u007f', '\u00ff', 'hello',
);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

test('request heads: never throw; accepted heads obey the grammar', () => {
  fc.assert(fc.property(fc.array(fc.oneof(piece, fc.string({ maxLength: 6 })), { maxLength: 24 }), fc.integer({ min: 16, max: 256 }), (parts, limit) => {
    const buf = Buffer.from(parts.join(''), 'latin1');
    const r = parseRequestHead(buf, 0, buf.length, limit);
    if (r.kind !== 'ok') return;
    assert.ok(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'].includes(r.method), r.method);
    assert.ok(/^[\x21-\x7e]+$/.test(r.target));
    assert.ok(r.headEnd <= buf.length && r.headEnd <= limit);
    assert.equal(r.fields.filter((f) => f.name === 'host').length, 1);
    assert.ok(r.fields.filter((f) => f.name === 'content-length').length <= 1);
    assert.ok(!r.fields.some((f) => f.name === 'transfer-encoding'));
    for (const f of r.fields) {
      assert.match(f.raw, TOKEN);
      assert.ok(!f.value.includes('\r') && !f.value.includes('\n') && !f.value.includes('\u0000'), JSON.stringify(f.value));
      assert.equal(f.value, f.value.trim());
    }
  }), { numRuns: 3000 });
});

test('response heads never throw on random bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(piece, { maxLength: 16 }), (bytes, parts) => {
    for (const buf of [Buffer.from(bytes), Buffer.from(parts.join(''), 'latin1')]) {
      const r = parseResponseHead(buf, 0, buf.length, 256);
      if (r.kind === 'ok') assert.ok(r.status >= 100 && r.status <= 599 && !(r.chunked && r.contentLength !== -1));
    }
  }), { numRuns: 2000 });
});

test('the chunked scanner finds the end of any valid body at any split, and never throws on noise', () => {
  const chunks = fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 6 });
  fc.assert(fc.property(chunks, fc.array(fc.nat(), { maxLength: 5 }), (data, cuts) => {
    const parts: Buffer[] = [];
    for (const d of data) parts.push(Buffer.from(`${d.length.toString(16)}\r\n`), Buffer.from(d), Buffer.from('\r\n'));
    parts.push(Buffer.from('0\r\n\r\n'));
    const body = Buffer.concat(parts);
    const whole = Buffer.concat([body, Buffer.from('GET')]);
    const points = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
    const s = new ChunkedScanner();
    let from = 0;
    let found = -1;
    for (const p of [...points, whole.length]) {
      if (p < from) continue;
      const at = s.scan(whole, from, p);
      from = p;
      if (at !== -1) {
        found = at;
        break;
      }
    }
    assert.equal(found, body.length);
  }), { numRuns: 1000 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    const r = new ChunkedScanner(64).scan(Buffer.from(bytes), 0, bytes.length);
    assert.ok(r >= -2 && r <= bytes.length);
  }), { numRuns: 2000 });
});
