import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiError } from '../../../src/api/errors.js';
import { SseDecoder, encodeSse, encodeSseComment } from '../../../src/api/sse.js';

test('decodes the spec examples: multi-line data, comments, ids, default event, CRLF and CR', () => {
  const d = new SseDecoder();
  const out = d.push(': hello\n\ndata: first\ndata: second\n\nid: 7\nevent: policies\ndata:{"a":1}\r\n\r\ndata: x\rid\r\r\n');
  assert.deepEqual(out, [
    { event: 'message', data: 'first\nsecond' },
    { id: '7', event: 'policies', data: '{"a":1}' },
    { id: '', event: 'message', data: 'x' },
  ]);
  assert.equal(d.lastEventId, '');
  assert.deepEqual(d.push('id: 9\n\n'), [], 'no data: nothing dispatched, but the id is remembered');
  assert.equal(d.lastEventId, '9');
  assert.deepEqual(d.push('id: a\0b\ndata: y\n\n'), [{ id: '9', event: 'message', data: 'y' }], 'an id with NUL is ignored');
});

test('a CR at the end of a chunk waits for a possible LF', () => {
  const d = new SseDecoder();
  assert.deepEqual(d.push('data: a\r'), []);
  assert.deepEqual(d.push('\n\r\n'), [{ event: 'message', data: 'a' }]);
});

test('property: any messages, encoded and cut into any chunks, decode to the same messages', () => {
  const field = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n\0]/g, ''));
  const msg = fc.record({ id: fc.option(field.filter((s) => s !== ''), { nil: undefined }), event: fc.option(field.filter((s) => s !== '' && !s.startsWith(' ')), { nil: undefined }), data: fc.string({ maxLength: 200 }) });
  fc.assert(fc.property(fc.array(msg, { maxLength: 8 }), fc.array(fc.nat(50), { maxLength: 20 }), (msgs, cuts) => {
    const wire = msgs.map((m) => encodeSse({ ...(m.id === undefined ? {} : { id: m.id }), ...(m.event === undefined ? {} : { event: m.event }), data: m.data })).join(encodeSseComment('hb'));
    const d = new SseDecoder();
    const got = [];
    let pos = 0;
    for (const c of cuts) {
      got.push(...d.push(wire.slice(pos, pos + c)));
      pos += c;
    }
    got.push(...d.push(wire.slice(pos)));
    let lastId: string | undefined;
    const expected = msgs.map((m) => {
      if (m.id !== undefined) lastId = m.id;
      return { ...(lastId === undefined ? {} : { id: lastId }), event: m.event ?? 'message', data: m.data.replace(/\r\n|\r/g, '\n') };
    });
    assert.deepEqual(got, expected);
  }), { numRuns: 300 });
});

test('fuzz: arbitrary bytes never throw, except a message over the limit (ERR_API_STREAM_TOO_LARGE)', () => {
  fc.assert(fc.property(fc.array(fc.string({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
    const d = new SseDecoder(1024);
    for (const c of chunks) {
      try {
        for (const m of d.push(c)) assert.equal(typeof m.data, 'string');
      } catch (e) {
        assert.ok(e instanceof ApiError && e.code === 'ERR_API_STREAM_TOO_LARGE', String(e));
        return;
      }
    }
  }), { numRuns: 500 });
  const d = new SseDecoder(64);
  assert.throws(() => d.push(`data: ${'x'.repeat(100)}\n`), /exceeds 64 bytes/);
  assert.throws(() => new SseDecoder(64).push('x'.repeat(100)), /exceeds 64 bytes/, 'an endless line is bounded too');
});
