// The lean path's HTTP/1.1 head parser and chunked scanner: strict acceptance, rejections that
// close smuggling and header-injection routes, and framing found at any split point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedScanner, findHeadEnd, parseRequestHead, parseResponseHead } from '../../../src/agent/proxy/http/h1-wire.js';

const req = (s: string) => parseRequestHead(Buffer.from(s, 'latin1'), 0, Buffer.byteLength(s, 'latin1'), 8192);
const res = (s: string) => parseResponseHead(Buffer.from(s, 'latin1'), 0, Buffer.byteLength(s, 'latin1'), 8192);

test('a plain request head is parsed with its fields, length and keep-alive intent', () => {
  const text = 'POST /a?b=1 HTTP/1.1\r\nHost: o\r\nContent-Length: 5\r\nX-A:  v w \r\nConnection: close, X-Hop\r\n\r\nhello';
  const r = req(text);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.equal(r.method, 'POST');
  assert.equal(r.target, '/a?b=1');
  assert.equal(r.host, 'o');
  assert.equal(r.contentLength, 5);
  assert.equal(r.close, true);
  assert.deepEqual(r.connectionListed, ['x-hop']);
  assert.deepEqual(r.fields.map((f) => [f.name, f.raw, f.value]), [['host', 'Host', 'o'], ['content-length', 'Content-Length', '5'], ['x-a', 'X-A', 'v w'], ['connection', 'Connection', 'close, X-Hop']]);
  assert.equal(text.slice(r.headEnd), 'hello');
});

test('an incomplete head waits; a head over the limit is 431', () => {
  assert.equal(req('GET / HTTP/1.1\r\nHost: o\r\n').kind, 'incomplete');
  const big = `GET / HTTP/1.1\r\nHost: o\r\nX: ${'a'.repeat(9000)}`;
  assert.deepEqual(req(big), { kind: 'error', status: 431 });
  assert.deepEqual(req(`${big}\r\n\r\n`), { kind: 'error', status: 431 });
});

test('malformed and smuggling-prone heads are rejected with 400', () => {
  const bad = [
    'GET / HTTP/1.1\nHost: o\n\n', // bare LF
    'GET / HTTP/1.1\r\nHost: o\nX: y\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: o\r\n folded\r\n\r\n', // obs-fold
    'GET / HTTP/1.1\r\nHost : o\r\n\r\n', // space before colon
    'GET / HTTP/1.1\r\nHost: o\r\nX-\u0000: y\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: o\r\nX: a\u0000b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: o\r\nX: a\rb\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: o\r\n: y\r\n\r\n',
    'G(T / HTTP/1.1\r\nHost: o\r\n\r\n',
    'G\u00e9T / HTTP/1.1\r\nHost: o\r\n\r\n',
    'GET /a b HTTP/1.1\r\nHost: o\r\n\r\n',
    'GET /\u00e9 HTTP/1.1\r\nHost: o\r\n\r\n',
    'GET  / HTTP/1.1\r\nHost: o\r\n\r\n',
    'GET / HTTP/2.0\r\nHost: o\r\n\r\n',
    'GET / HTTP/1.1 \r\nHost: o\r\n\r\n',
    'GET / HTTP/1.1\r\n\r\n', // no Host
    'GET / HTTP/1.1\r\nHost: o\r\nHost: p\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nContent-Length: 5, 6\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nContent-Length: -1\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nContent-Length: +5\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nContent-Length: 1234567890123456\r\n\r\n',
  ];
  for (const text of bad) assert.deepEqual(req(text), { kind: 'error', status: 400 }, JSON.stringify(text));
});

test('framing the lean path does not handle goes to llhttp: HTTP/1.0, other methods, Transfer-Encoding, Expect, Upgrade', () => {
  for (const text of [
    'GET / HTTP/1.0\r\n\r\n',
    'FOO / HTTP/1.1\r\nHost: o\r\n\r\n',
    'TRACE / HTTP/1.1\r\nHost: o\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: o\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: o\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n',
  ]) assert.deepEqual(req(text), { kind: 'fallback' }, JSON.stringify(text));
});

test('response heads: framing by length, chunked or close; bad framing fails closed', () => {
  const cl = res('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  assert.ok(cl.kind === 'ok' && cl.contentLength === 2 && !cl.chunked && !cl.close && cl.reason === 'OK');
  const ch = res('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
  assert.ok(ch.kind === 'ok' && ch.chunked && ch.close && ch.status === 404);
  const old = res('HTTP/1.0 200 OK\r\n\r\n');
  assert.ok(old.kind === 'ok' && old.close && old.contentLength === -1);
  const noReason = res('HTTP/1.1 204\r\n\r\n');
  assert.ok(noReason.kind === 'ok' && noReason.status === 204 && noReason.reason === '');
  for (const text of [
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 2000 OK\r\n\r\n',
    'HTTP/1.2 200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\nX: y\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\u0000\r\n\r\n',
  ]) assert.deepEqual(res(text), { kind: 'error' }, JSON.stringify(text));
});

test('findHeadEnd reports bare LF at once and the limit', () => {
  const b = Buffer.from('GET / HTTP/1.1\r\nHost: o\r\n\r\nrest');
  assert.equal(findHeadEnd(b, 0, b.length, 100), b.length - 4);
  assert.equal(findHeadEnd(Buffer.from('GET /\n'), 0, 6, 100), -2);
  assert.equal(findHeadEnd(Buffer.from('GET /'), 0, 5, 5), -3);
});

/** A chunked body with extensions and trailers. */
const CHUNKED = '5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';

test('the chunked scanner finds the end of the body at every split point, and not before', () => {
  const body = Buffer.from(`${CHUNKED}NEXT`);
  const end = CHUNKED.length;
  for (let split = 0; split <= body.length; split++) {
    const s = new ChunkedScanner();
    const first = s.scan(body, 0, Math.min(split, end + 4));
    if (split < end) {
      assert.equal(first, -1, `split ${split}`);
      assert.equal(s.scan(body, split, body.length), end, `split ${split}`);
    } else {
      assert.equal(first, end, `split ${split}`);
    }
  }
});

test('malformed chunked framing is reported', () => {
  for (const text of ['x\r\n', '5\r\nhelloX\r\n', '5\nhello\r\n', '0\r\n\n', '\r\n', '1ffffffffffffff\r\n', '0\r\nX: a\nb\r\n\r\n']) {
    assert.equal(new ChunkedScanner().scan(Buffer.from(text), 0, text.length), -2, JSON.stringify(text));
  }
});

test('a head scanned incrementally (resuming where the last scan stopped) parses as if whole', () => {
  const heads = [
    'GET /a HTTP/1.1\r\nHost: o\r\nX-A: b\r\n\r\nGET /next HTTP/1.1\r\n',
    'POST /b HTTP/1.1\r\nHost: o\r\nContent-Length: 3\r\n\r\nabc',
    'GET /c HTTP/1.1\r\nHost: o\nX: y\r\n\r\n',
    'GET /d HTTP/1.1\r\nHost: o\r\n\r',
    `GET /e HTTP/1.1\r\nHost: o\r\nX-Big: ${'a'.repeat(300)}\r\n\r\n`,
  ];
  fc.assert(fc.property(fc.constantFrom(...heads), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 40, max: 400 }), (text, sizes, limit) => {
    const whole = Buffer.from(text, 'latin1');
    const once = parseRequestHead(whole, 0, whole.length, limit);
    let scanned = 0;
    let got = parseRequestHead(whole, 0, 0, limit);
    for (let end = 0, k = 0; end < whole.length && got.kind === 'incomplete'; k++) {
      end = Math.min(whole.length, end + (sizes[k % sizes.length] as number));
      got = parseRequestHead(whole.subarray(0, end), 0, end, limit, scanned);
      scanned = end;
    }
    assert.deepEqual(got, once);
  }), { numRuns: 500 });
});
