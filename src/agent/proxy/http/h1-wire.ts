/**
 * A strict, allocation-light HTTP/1.1 message-head parser (RFC 9112) for the agent's lean L7
 * path, and a pass-through scanner for chunked bodies. Anything it does not fully understand is
 * either rejected (`error`) or, for requests, handed to Node's llhttp-based server (`fallback`):
 * it never guesses. Rejected: bare LF, obs-fold, whitespace before the colon, control characters
 * and NUL in names or values, non-token methods, non-ASCII request targets, duplicate `Host` or
 * `Content-Length`, non-decimal `Content-Length`, heads larger than the limit (431).
 */

export interface HeadField {
  /** Lower-cased name. */
  readonly name: string;
  /** Name as received (forwarded as is). */
  readonly raw: string;
  readonly value: string;
}

export type RequestHead =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly status: 400 | 431 }
  /** What the lean path leaves to llhttp: HTTP/1.0, other methods, Transfer-Encoding, Expect, Upgrade. */
  | { readonly kind: 'fallback' }
  | {
    readonly kind: 'ok';
    readonly method: string;
    readonly target: string;
    readonly host: string;
    readonly fields: readonly HeadField[];
    /** Declared body length (0 when absent). */
    readonly contentLength: number;
    /** The caller asked to close after this exchange. */
    readonly close: boolean;
    /** Header names listed in `Connection` (hop-by-hop, never forwarded). */
    readonly connectionListed: readonly string[] | undefined;
    /** Offset just past the empty line. */
    readonly headEnd: number;
  };

export type ResponseHead =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error' }
  | {
    readonly kind: 'ok';
    readonly status: number;
    readonly reason: string;
    readonly http10: boolean;
    readonly fields: readonly HeadField[];
    /** -1 when absent. */
    readonly contentLength: number;
    readonly chunked: boolean;
    readonly close: boolean;
    readonly connectionListed: readonly string[] | undefined;
    readonly headEnd: number;
  };

const CR = 0x0d;
const LF = 0x0a;

/** RFC 9110 §5.6.2 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

/** Field-value octets: HTAB, SP, VCHAR, obs-text. */
function validValueChar(c: number): boolean {
  return c === 0x09 || (c >= 0x20 && c !== 0x7f);
}

const DECIMAL = /^[0-9]{1,15}$/;

/** Methods the lean path takes; any other token (TRACE, WebDAV, …) is left to llhttp's list. */
const LEAN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/**
 * Finds the end of a head (`\r\n\r\n`) in `buf[start, end)`. Returns the offset past it, -1 if
 * not there yet, -2 on a bare LF (rejected at once rather than waiting for a timeout), or -3
 * if the head is over `limit` bytes. `from` (≥ `start`) resumes a scan that already returned -1
 * for `buf[start, from)`: a head arriving a byte per TLS record is then scanned once, not once
 * per record.
 */
export function findHeadEnd(buf: Buffer, start: number, end: number, limit: number, from = start): number {
  const stop = Math.min(end, start + limit);
  for (let i = buf.indexOf(LF, Math.max(start, from)); i !== -1 && i < stop; i = buf.indexOf(LF, i + 1)) {
    if (i === start || buf[i - 1] !== CR) return -2;
    if (i >= start + 3 && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return end - start >= limit ? -3 : -1;
}

interface Fields {
  readonly fields: HeadField[];
  readonly ok: boolean;
}

/** Parses header lines of `head` (no request/status line), from `from` to its end. */
function parseFields(head: string, from: number): Fields {
  const fields: HeadField[] = [];
  let i = from;
  // `head` ends with "\r\n\r\n": the loop stops at the empty line.
  for (;;) {
    const eol = head.indexOf('\r\n', i);
    if (eol === -1 || eol === i) break;
    let colon = -1;
    for (let j = i; j < eol; j++) {
      const c = head.charCodeAt(j);
      if (c === 0x3a) {
        colon = j;
        break;
      }
      if (TCHAR[c] !== 1) return { fields, ok: false };
    }
    if (colon <= i) return { fields, ok: false };
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && (head.charCodeAt(vs) === 0x20 || head.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (head.charCodeAt(ve - 1) === 0x20 || head.charCodeAt(ve - 1) === 0x09)) ve--;
    for (let j = vs; j < ve; j++) if (!validValueChar(head.charCodeAt(j))) return { fields, ok: false };
    const raw = head.slice(i, colon);
    fields.push({ name: raw.toLowerCase(), raw, value: head.slice(vs, ve) });
    i = eol + 2;
  }
  return { fields, ok: true };
}

/**
 * Names a `Connection` header may not remove: the message framing and the authority. Dropping
 * `Content-Length` while still consuming the body would let the app read the body as the next
 * request (request smuggling past the policy decision).
 */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

function listTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t.length > 0) out.push(t);
  }
  return out;
}

/** Parses one request head from `buf[start, end)`; `scanned` as `from` of `findHeadEnd`. */
export function parseRequestHead(buf: Buffer, start: number, end: number, limit: number, scanned = start): RequestHead {
  const headEnd = findHeadEnd(buf, start, end, limit, scanned);
  if (headEnd === -1) return { kind: 'incomplete' };
  if (headEnd === -2) return { kind: 'error', status: 400 };
  if (headEnd === -3) return { kind: 'error', status: 431 };
  const head = buf.toString('latin1', start, headEnd);
  // Request line: method SP request-target SP HTTP-version CRLF
  const sp1 = head.indexOf(' ');
  const eol = head.indexOf('\r\n');
  if (sp1 <= 0 || sp1 > eol) return { kind: 'error', status: 400 };
  for (let j = 0; j < sp1; j++) if (TCHAR[head.charCodeAt(j)] !== 1) return { kind: 'error', status: 400 };
  const sp2 = head.indexOf(' ', sp1 + 1);
  if (sp2 === -1 || sp2 > eol || sp2 === sp1 + 1) return { kind: 'error', status: 400 };
  for (let j = sp1 + 1; j < sp2; j++) {
    const c = head.charCodeAt(j);
    if (c <= 0x20 || c >= 0x7f) return { kind: 'error', status: 400 };
  }
  const version = head.slice(sp2 + 1, eol);
  if (version === 'HTTP/1.0' || (version === 'HTTP/1.1' && !LEAN_METHODS.has(head.slice(0, sp1)))) return { kind: 'fallback' };
  if (version !== 'HTTP/1.1') return { kind: 'error', status: 400 };
  if (head.charCodeAt(eol + 2) === 0x20 || head.charCodeAt(eol + 2) === 0x09) return { kind: 'error', status: 400 };
  const parsed = parseFields(head, eol + 2);
  if (!parsed.ok) return { kind: 'error', status: 400 };
  let host: string | undefined;
  let contentLength = 0;
  let sawLength = false;
  let close = false;
  let connectionListed: string[] | undefined;
  for (const f of parsed.fields) {
    switch (f.name) {
      case 'host':
        if (host !== undefined) return { kind: 'error', status: 400 };
        host = f.value;
        break;
      case 'content-length':
        if (sawLength || !DECIMAL.test(f.value)) return { kind: 'error', status: 400 };
        sawLength = true;
        contentLength = Number(f.value);
        break;
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return { kind: 'fallback' };
      case 'connection':
        for (const t of listTokens(f.value)) {
          if (t === 'close') close = true;
          else if (t === 'upgrade') return { kind: 'fallback' };
          else if (t !== 'keep-alive' && !FRAMING.has(t)) (connectionListed ??= []).push(t);
        }
        break;
      default:
    }
  }
  if (host === undefined) return { kind: 'error', status: 400 };
  return { kind: 'ok', method: head.slice(0, sp1), target: head.slice(sp1 + 1, sp2), host, fields: parsed.fields, contentLength, close, connectionListed, headEnd };
}

/** Parses one response head (from the app) from `buf[start, end)`. */
export function parseResponseHead(buf: Buffer, start: number, end: number, limit: number): ResponseHead {
  const headEnd = findHeadEnd(buf, start, end, limit);
  if (headEnd === -1) return { kind: 'incomplete' };
  if (headEnd < 0) return { kind: 'error' };
  const head = buf.toString('latin1', start, headEnd);
  const eol = head.indexOf('\r\n');
  const version = head.slice(0, 9);
  if (version !== 'HTTP/1.1 ' && version !== 'HTTP/1.0 ') return { kind: 'error' };
  const code = head.slice(9, 12);
  if (!/^[1-5][0-9][0-9]$/.test(code) || (eol > 12 && head.charCodeAt(12) !== 0x20)) return { kind: 'error' };
  const reason = eol > 13 ? head.slice(13, eol) : '';
  for (let j = 0; j < reason.length; j++) if (!validValueChar(reason.charCodeAt(j))) return { kind: 'error' };
  if (head.charCodeAt(eol + 2) === 0x20 || head.charCodeAt(eol + 2) === 0x09) return { kind: 'error' };
  const parsed = parseFields(head, eol + 2);
  if (!parsed.ok) return { kind: 'error' };
  const http10 = version === 'HTTP/1.0 ';
  let contentLength = -1;
  let chunked = false;
  let close = http10;
  let connectionListed: string[] | undefined;
  for (const f of parsed.fields) {
    if (f.name === 'content-length') {
      if (contentLength !== -1 || !DECIMAL.test(f.value)) return { kind: 'error' };
      contentLength = Number(f.value);
    } else if (f.name === 'transfer-encoding') {
      // Only plain `chunked` is passed through; other codings fail closed.
      if (chunked || f.value.toLowerCase() !== 'chunked') return { kind: 'error' };
      chunked = true;
    } else if (f.name === 'connection') {
      // An HTTP/1.0 app connection is never reused, whatever it says.
      for (const t of listTokens(f.value)) {
        if (t === 'close') close = true;
        else if (t !== 'keep-alive' && !FRAMING.has(t)) (connectionListed ??= []).push(t);
      }
    }
  }
  if (chunked && contentLength !== -1) return { kind: 'error' };
  return { kind: 'ok', status: Number(code), reason, http10, fields: parsed.fields, contentLength, chunked, close, connectionListed, headEnd };
}

/** Scanner states. */
const Chunk = { Size: 0, Ext: 1, SizeLf: 2, Data: 3, DataCr: 4, DataLf: 5, TrailerStart: 6, TrailerLine: 7, TrailerLf: 8, EndLf: 9, Done: 10 } as const;

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/**
 * Tracks where a chunked body ends without copying it (the bytes are forwarded as they are).
 * `scan` returns the offset just past the body's end, -1 if the body continues past `end`, or -2
 * on malformed framing.
 */
export class ChunkedScanner {
  #state: number = Chunk.Size;
  #remaining = 0;
  #digits = 0;
  #lineBytes = 0;

  constructor(private readonly maxLineBytes = 8192) {}

  get done(): boolean {
    return this.#state === Chunk.Done;
  }

  scan(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      const c = buf[i] as number;
      switch (this.#state) {
        case Chunk.Size: {
          const h = HEX[c] as number;
          if (h !== -1) {
            if (++this.#digits > 13) return -2;
            this.#remaining = this.#remaining * 16 + h;
          } else if (this.#digits === 0) {
            return -2;
          } else if (c === CR) {
            this.#state = Chunk.SizeLf;
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            this.#state = Chunk.Ext;
            this.#lineBytes = 0;
          } else {
            return -2;
          }
          i++;
          break;
        }
        case Chunk.Ext:
          if (c === CR) this.#state = Chunk.SizeLf;
          else if (c === LF || (c < 0x20 && c !== 0x09) || ++this.#lineBytes > this.maxLineBytes) return -2;
          i++;
          break;
        case Chunk.SizeLf:
          if (c !== LF) return -2;
          i++;
          this.#digits = 0;
          this.#state = this.#remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
          this.#lineBytes = 0;
          break;
        case Chunk.Data: {
          const n = Math.min(this.#remaining, end - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (c !== CR) return -2;
          this.#state = Chunk.DataLf;
          i++;
          break;
        case Chunk.DataLf:
          if (c !== LF) return -2;
          this.#state = Chunk.Size;
          i++;
          break;
        case Chunk.TrailerStart:
          if (c === CR) this.#state = Chunk.EndLf;
          else if (c === LF) return -2;
          else this.#state = Chunk.TrailerLine;
          i++;
          break;
        case Chunk.TrailerLine:
          if (c === CR) this.#state = Chunk.TrailerLf;
          else if (c === LF || c === 0) return -2;
          if (++this.#lineBytes > this.maxLineBytes) return -2;
          i++;
          break;
        case Chunk.TrailerLf:
          if (c !== LF) return -2;
          this.#state = Chunk.TrailerStart;
          i++;
          break;
        case Chunk.EndLf:
          if (c !== LF) return -2;
          this.#state = Chunk.Done;
          return i + 1;
        case Chunk.Done:
          return i;
      }
    }
    return this.#state === Chunk.Done ? i : -1;
  }
}
