/**
 * A minimal, strict DER reader and writer: the only ASN.1 the hot paths need (CSR check, leaf
 * issuance, chain verification). Strict means definite minimal lengths, single-byte tags and
 * every length inside its parent; anything else is {@link DerError} so callers fail closed.
 * See docs/adr/0011 for why issuance does not go through a general X.509 library.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One tag-length-value: `start` is the tag byte, `body` the content offset, `end` one past it. */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

export const TAG = Object.freeze({
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
});

/** Reads the TLV at `pos`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, pos: number, limit: number = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated header');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let len = buf[pos + 1] as number;
  let body = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length');
    if (n > 4) throw new DerError('length too large');
    if (body + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[body + i] as number);
    if ((buf[body] as number) === 0 || len < 0x80) throw new DerError('non-minimal length');
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new DerError('length beyond parent');
  return { tag, start: pos, body, end };
}

/** Reads exactly one TLV spanning `buf` and checks its tag. */
export function readOnly(buf: Uint8Array, tag: number): Tlv {
  const tlv = readTlv(buf, 0, buf.length);
  if (tlv.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  if (tlv.end !== buf.length) throw new DerError('trailing data');
  return tlv;
}

/** The children of a constructed TLV. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.body;
  while (pos < parent.end) {
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

/** Checks the tag of a TLV; returns it for chaining. */
export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv === undefined) throw new DerError(`${what}: missing`);
  if (tlv.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  return tlv;
}

export function bodyOf(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.body, tlv.end - tlv.body);
}

export function rawOf(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);
}

/** Decodes an OBJECT IDENTIFIER body to dotted form. */
export function decodeOid(body: Uint8Array): string {
  if (body.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let value = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i] as number;
    if (value === 0 && b === 0x80) throw new DerError('non-minimal OID');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) throw new DerError('OID arc too large');
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else parts.push(value);
      value = 0;
    } else if (i === body.length - 1) throw new DerError('truncated OID');
  }
  return parts.join('.');
}

export function readOid(buf: Uint8Array, tlv: Tlv | undefined, what: string): string {
  return decodeOid(bodyOf(buf, expectTag(tlv, TAG.OID, what)));
}

/** Reads a BOOLEAN (DER: 0x00 or 0xff). */
export function readBoolean(buf: Uint8Array, tlv: Tlv): boolean {
  expectTag(tlv, TAG.BOOLEAN, 'boolean');
  if (tlv.end - tlv.body !== 1) throw new DerError('boolean length');
  const v = buf[tlv.body] as number;
  if (v !== 0 && v !== 0xff) throw new DerError('non-DER boolean');
  return v === 0xff;
}

/** Reads a small non-negative INTEGER. */
export function readSmallInt(buf: Uint8Array, tlv: Tlv): number {
  expectTag(tlv, TAG.INTEGER, 'integer');
  const len = tlv.end - tlv.body;
  if (len === 0 || len > 4) throw new DerError('integer length');
  if ((buf[tlv.body] as number) & 0x80) throw new DerError('negative integer');
  if (len > 1 && buf[tlv.body] === 0 && ((buf[tlv.body + 1] as number) & 0x80) === 0) throw new DerError('non-minimal integer');
  let v = 0;
  for (let i = tlv.body; i < tlv.end; i++) v = v * 256 + (buf[i] as number);
  return v;
}

/** Checks an INTEGER is minimally encoded and positive (serial numbers: RFC 5280 4.1.2.2). */
export function checkPositiveInteger(buf: Uint8Array, tlv: Tlv, maxBytes: number): void {
  expectTag(tlv, TAG.INTEGER, 'integer');
  const len = tlv.end - tlv.body;
  if (len === 0 || len > maxBytes) throw new DerError('integer length');
  const first = buf[tlv.body] as number;
  if (first & 0x80) throw new DerError('negative integer');
  if (len > 1 && first === 0 && ((buf[tlv.body + 1] as number) & 0x80) === 0) throw new DerError('non-minimal integer');
}

/** Reads a BIT STRING body: unused-bit count and the bytes. */
export function readBitString(buf: Uint8Array, tlv: Tlv): { unused: number; bytes: Buffer } {
  expectTag(tlv, TAG.BIT_STRING, 'bit string');
  if (tlv.end - tlv.body < 1) throw new DerError('empty bit string');
  const unused = buf[tlv.body] as number;
  if (unused > 7 || (unused > 0 && tlv.end - tlv.body === 1)) throw new DerError('bad unused bits');
  // DER: the unused (padding) bits are zero. Readers that mask them (OpenSSL) and readers that
  // do not would otherwise see different key usages in the same bytes.
  if (unused > 0 && ((buf[tlv.end - 1] as number) & ((1 << unused) - 1)) !== 0) throw new DerError('non-zero padding bits');
  return { unused, bytes: Buffer.from(buf.buffer, buf.byteOffset + tlv.body + 1, tlv.end - tlv.body - 1) };
}

const TIME_RE = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** Reads UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as epoch ms. */
export function readTime(buf: Uint8Array, tlv: Tlv | undefined): number {
  if (tlv === undefined || (tlv.tag !== TAG.UTC_TIME && tlv.tag !== TAG.GENERALIZED_TIME)) throw new DerError('time: bad tag');
  const text = Buffer.from(buf.buffer, buf.byteOffset + tlv.body, tlv.end - tlv.body).toString('latin1');
  const m = TIME_RE.exec(text);
  const expectedLength = tlv.tag === TAG.UTC_TIME ? 13 : 15;
  if (!m || text.length !== expectedLength) throw new DerError('time: bad format');
  let year = Number(m[1]);
  if (tlv.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  const [mo, d, h, mi, s] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  const check = new Date(ms);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw new DerError('time: out of range');
  return ms;
}

// ---------------------------------------------------------------- writer

function lengthBytes(len: number): number[] {
  if (len < 0x80) return [len];
  const bytes: number[] = [];
  for (let v = len; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** Encodes one TLV from its tag and content parts. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const header = Buffer.from([tag, ...lengthBytes(len)]);
  return Buffer.concat([header, ...parts], header.length + len);
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]): Buffer => tlv(TAG.SET, ...parts);
export const octets = (content: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, content);
export const bitString = (content: Uint8Array, unused = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.from([unused]), content);
export const DER_TRUE: Buffer = Buffer.from([0x01, 0x01, 0xff]);
export const DER_NULL: Buffer = Buffer.from([0x05, 0x00]);

/** Encodes a dotted OID. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [];
  const push = (v: number): void => {
    const tmp = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) tmp.unshift((x & 0x7f) | 0x80);
    out.push(...tmp);
  };
  push((arcs[0] as number) * 40 + (arcs[1] as number));
  for (const a of arcs.slice(2)) push(a);
  return tlv(TAG.OID, Buffer.from(out));
}

/** Encodes a non-negative big-endian magnitude as a DER INTEGER. */
export function uint(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  return (trimmed[0] as number) & 0x80 ? tlv(TAG.INTEGER, Buffer.from([0]), trimmed) : tlv(TAG.INTEGER, trimmed);
}

export function smallInt(v: number): Buffer {
  const bytes: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return uint(Buffer.from(bytes.length === 0 ? [0] : bytes));
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Encodes a time as RFC 5280 says: UTCTime up to 2049, GeneralizedTime from 2050. */
export function time(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${pad(y % 100)}${rest}`, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${pad(y, 4)}${rest}`, 'latin1'));
}
