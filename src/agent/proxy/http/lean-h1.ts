/**
 * The lean HTTP/1.1 path of an inbound L7 port (ADR 0043): parses each request head on the
 * already-decrypted stream with the strict parser of `h1-wire.ts`, decides, then forwards the
 * bytes to a pooled keep-alive connection to the app and the response bytes back, without
 * Node's `http.Server`/`http.request` objects per request. Requests it leaves to llhttp
 * (HTTP/1.0, Transfer-Encoding, Expect, Upgrade) hand the connection, at a request boundary,
 * to the Node server path, which keeps every check it had.
 *
 * Limits: the head must arrive within `headersTimeoutMs` and fit in `maxHeaderBytes` (431);
 * a declared body within `requestTimeoutMs`; idle keep-alive connections close after
 * `keepAliveMs`. Pipelined bytes are held (bounded) until the current response ends, and the
 * next request is read only once the previous answer has drained to the caller.
 *
 * Half-close: the caller's socket is half-open (`allowHalfOpen`), so a caller that sends its
 * requests and then shuts its write side (FIN; on TLS close_notify then FIN) still gets every
 * request it sent in full decided and answered, in order, before the agent ends its side. A
 * request cut short by the EOF is never forwarded whole: a partial head or a body shorter than
 * its Content-Length is answered 400 (a body already streaming cuts the app connection, so the
 * app sees an aborted request), and nothing new is read after the EOF. While the app is slow,
 * the idle timeout still bounds the half-open connection.
 */
import { connect, type Socket } from 'node:net';
import type { VerifiedConnection } from './verified.js';
import { ChunkedScanner, parseRequestHead, parseResponseHead, type HeadField } from './h1-wire.js';
import { IDENTITY_HEADER, isIdentityHeaderName } from './xfcc.js';
import { watchIdle } from '../idle.js';

/** What the lean path needs from the L7 layer: the decision and the bookkeeping. */
export interface LeanHost {
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveMs: number;
  /**
   * Decides one request. Returns the identity header value to add (or `null` for none) when
   * allowed, or the Ward error code of the denial (already counted and recorded).
   */
  decide(verified: VerifiedConnection, method: string, target: string, host: string, fields: readonly HeadField[], started: number): Promise<Decided> | Decided;
  recordAllowed(verified: VerifiedConnection, method: string, path: string, status: number, policy: string, started: number): void;
  /** Counts and answers a malformed request (the caller closes). */
  malformed(status: number): void;
  /** Gives the connection, with the bytes already read, to the Node HTTP server. */
  fallback(socket: Socket, pending: Buffer | undefined): void;
}

export type Decided =
  | { readonly allow: true; readonly path: string; readonly query: string; readonly identity: string | null; readonly policy: string }
  | { readonly allow: false; readonly code: string; readonly status: number; readonly closeAfter: boolean };

/** Request headers never forwarded (RFC 9110 §7.6.1), plus the identity and `host` (re-added). */
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', IDENTITY_HEADER, 'host']);
/** Response headers never forwarded; framing (`content-length`, `transfer-encoding`) passes through. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'http2-settings']);

const REASONS: Readonly<Record<number, string>> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway' };

/** A canned Ward error answer; `{"code":…}` only, never internals. */
export function errorResponse(status: number, code: string, close: boolean): string {
  const body = `{"code":"${code}"}`;
  return `HTTP/1.1 ${status} ${REASONS[status] ?? 'Forbidden'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`;
}

/**
 * The request head sent to the app for an allowed request: the authorised path, the caller's
 * fields minus hop-by-hop ones and any identity header, then the verified identity. Framing
 * (`content-length`) is never removed, so the app reads exactly the body the agent forwards.
 */
export function forwardedHead(method: string, pathAndQuery: string, host: string, fields: readonly HeadField[], listed: readonly string[] | undefined, identity: string | null): string {
  let out = `${method} ${pathAndQuery} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const f of fields) {
    if (DROP_REQUEST.has(f.name) || isIdentityHeaderName(f.name) || (listed !== undefined && listed.includes(f.name))) continue;
    out += `${f.raw}: ${f.value}\r\n`;
  }
  if (fields.some((f) => f.name === 'te' && f.value.toLowerCase() === 'trailers')) out += 'te: trailers\r\n';
  if (identity !== null) out += `${IDENTITY_HEADER}: ${identity}\r\n`;
  return `${out}\r\n`;
}

/**
 * Methods a dropped reused app connection may be retried for (RFC 9110 §9.2.2): the app may
 * have acted on a POST or PATCH before closing, and must not see it twice.
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

const APP_HEAD_LIMIT = 64 * 1024;
/** Response bodies up to this size in the head's chunk are sent with the head in one write. */
const COALESCE_BYTES = 16 * 1024;
const MAX_IDLE_APP = 256;
/** Idle app connections older than this are not reused (a typical app's keep-alive timeout is 5 s). */
const APP_IDLE_MS = 4000;

/** Keep-alive connections to the app, most recently used first. */
export class AppPool {
  readonly #idle: AppConn[] = [];
  #closed = false;

  constructor(readonly host: string, readonly port: number) {}

  acquire(): AppConn {
    for (let c = this.#idle.pop(); c !== undefined; c = this.#idle.pop()) {
      if (c.socket.destroyed) continue;
      if (performance.now() - c.idleSince > APP_IDLE_MS) {
        c.socket.destroy();
        continue;
      }
      c.reused = true;
      return c;
    }
    return new AppConn(this, connect({ host: this.host, port: this.port, noDelay: true }));
  }

  release(c: AppConn): void {
    if (this.#closed || c.socket.destroyed || this.#idle.length >= MAX_IDLE_APP) {
      c.socket.destroy();
      return;
    }
    c.idleSince = performance.now();
    this.#idle.push(c);
  }

  forget(c: AppConn): void {
    const i = this.#idle.indexOf(c);
    if (i !== -1) this.#idle.splice(i, 1);
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.socket.destroy();
  }
}

/** One app connection; carries at most one exchange at a time. */
export class AppConn {
  exchange: LeanH1Connection | undefined;
  reused = false;
  /** When it went back to the pool (monotonic ms). */
  idleSince = 0;
  /** Response bytes not yet consumed (head in progress). */
  rbuf: Buffer | undefined;

  constructor(readonly pool: AppPool, readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.exchange === undefined) socket.destroy(); // unsolicited bytes: never reuse
      else this.exchange.onAppData(chunk);
    });
    socket.on('end', () => this.exchange?.onAppEnd());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      pool.forget(this);
      this.exchange?.onAppClose();
    });
  }
}

const S_HEAD = 0;
const S_BODY = 1;
const S_RESPONSE = 2;
const S_DECIDING = 3;
const S_GONE = 4;

const R_HEAD = 0;
const R_LENGTH = 1;
const R_CHUNKED = 2;
const R_UNTIL_CLOSE = 3;

/** One client connection on the lean path. */
export class LeanH1Connection {
  #state = S_HEAD;
  /** Unparsed client bytes (a head in progress, or pipelined requests). */
  #pending: Buffer | undefined;
  /** Backing store `#pending` grows into (doubling), so a head in tiny records is not copied per record. */
  #store: Buffer | undefined;
  /** Bytes of `#pending` already scanned for a head end without finding one. */
  #scanned = 0;
  #headTimer: NodeJS.Timeout | undefined;
  #bodyTimer: NodeJS.Timeout | undefined;
  #bodyLeft = 0;
  #app: AppConn | undefined;
  // The exchange in flight.
  #method = '';
  #path = '';
  #policy = '';
  #started = 0;
  #closeAfter = false;
  #replayable: string | undefined;
  #resState = R_HEAD;
  #resLeft = 0;
  #status = 0;
  #scanner: ChunkedScanner | undefined;
  #sentHead = false;
  #keepApp = true;
  #unwatch: (() => void) | undefined;
  /** A response head waiting to go out with the first body bytes. */
  #headOut: string | undefined;
  /** The caller shut its write side: no byte will follow what `#pending` holds. */
  #eof = false;
  readonly #onData = (chunk: Buffer): void => this.#clientData(chunk);
  readonly #onEnd = (): void => this.#clientEnd();

  constructor(
    readonly socket: Socket,
    readonly verified: VerifiedConnection,
    readonly host: LeanHost,
    readonly pool: AppPool,
  ) {}

  start(): void {
    const { socket } = this;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', () => socket.destroy());
    const unwatch = watchIdle([socket], this.host.keepAliveMs, () => socket.destroy());
    socket.once('close', () => {
      unwatch();
      this.#gone();
    });
    this.#unwatch = unwatch;
    this.#armHeadTimer();
    socket.resume();
  }

  #gone(): void {
    this.#state = S_GONE;
    this.#clearTimers();
    const app = this.#app;
    this.#app = undefined;
    if (app !== undefined) {
      app.exchange = undefined;
      app.socket.destroy(); // a response may still be coming: never reuse
    }
  }

  #clearTimers(): void {
    if (this.#headTimer !== undefined) clearTimeout(this.#headTimer);
    if (this.#bodyTimer !== undefined) clearTimeout(this.#bodyTimer);
    this.#headTimer = this.#bodyTimer = undefined;
  }

  #armHeadTimer(): void {
    this.#headTimer ??= setTimeout(() => {
      this.#headTimer = undefined;
      if (this.#state === S_HEAD) this.#fail(408);
    }, this.host.headersTimeoutMs);
  }

  #fail(status: number, code = 'ERR_AGENT_BAD_REQUEST'): void {
    this.host.malformed(status);
    this.#state = S_GONE;
    this.#clearTimers();
    if (this.socket.writable) this.socket.end(errorResponse(status, code, true));
    this.socket.destroySoon();
  }

  #clientData(chunk: Buffer): void {
    switch (this.#state) {
      case S_HEAD:
        this.#append(chunk);
        this.#parse();
        return;
      case S_BODY:
        this.#forwardBody(chunk, 0);
        return;
      case S_GONE:
        return;
      default:
        // Pipelined bytes wait for the current response; bounded by pausing the caller.
        if (this.#append(chunk).length > this.host.maxHeaderBytes) this.socket.pause();
    }
  }

  /**
   * The caller half-closed. Between requests the connection ends now; a head in progress is
   * completed from what arrived or answered 400; a body still streaming to the app can no
   * longer be completed. Decisions and responses in flight go on: `#decided` and `#next` see
   * `#eof`.
   */
  #clientEnd(): void {
    this.#eof = true;
    if (this.#state === S_HEAD) {
      if (this.#pending === undefined) this.#finish();
      // Waiting for the last answer to drain: `#next` reads the rest once it has.
      else if (!this.socket.writableNeedDrain) this.#parse();
    } else if (this.#state === S_BODY) {
      this.#bodyCut();
    }
  }

  /** Nothing left to answer: ends the caller's side (on TLS, close_notify then FIN). */
  #finish(): void {
    this.#state = S_GONE;
    this.#clearTimers();
    this.socket.end();
  }

  /**
   * The caller's EOF arrived before the body it declared: the app connection is cut (the app
   * sees an aborted request, never a complete one) and the caller answered 400, unless the
   * app's answer has begun, which cannot be completed either.
   */
  #bodyCut(): void {
    const app = this.#app;
    this.#app = undefined;
    if (app !== undefined) {
      app.exchange = undefined;
      app.socket.destroy();
    }
    this.host.recordAllowed(this.verified, this.#method, this.#path, 400, this.#policy, this.#started);
    this.#state = S_GONE;
    this.#clearTimers();
    if (this.#sentHead) this.socket.destroy();
    else this.socket.end(errorResponse(400, 'ERR_AGENT_BAD_REQUEST', true));
  }

  /** Appends client bytes to `#pending`, in place when it owns room at the start of `#store`. */
  #append(chunk: Buffer): Buffer {
    const p = this.#pending;
    if (p === undefined) {
      this.#scanned = 0;
      return (this.#pending = chunk);
    }
    const len = p.length + chunk.length;
    let store = this.#store;
    if (store === undefined || p.buffer !== store.buffer || p.byteOffset !== store.byteOffset || store.length < len) {
      // A fresh store: views of an older one may still be queued in a socket write.
      store = Buffer.allocUnsafe(Math.max(len, 2 * p.length, 4096));
      p.copy(store, 0);
      this.#store = store;
    }
    chunk.copy(store, p.length);
    return (this.#pending = store.subarray(0, len));
  }

  #parse(): void {
    const buf = this.#pending;
    if (buf === undefined || this.#state !== S_HEAD) return;
    const head = parseRequestHead(buf, 0, buf.length, this.host.maxHeaderBytes, this.#scanned);
    if (head.kind === 'incomplete') {
      // After the caller's EOF no byte can complete it: never forwarded.
      if (this.#eof) {
        this.#fail(400);
        return;
      }
      this.#scanned = buf.length;
      this.#armHeadTimer();
      return;
    }
    this.#scanned = 0;
    this.#store = undefined; // not kept per idle keep-alive connection; views hold what is needed
    if (head.kind === 'error') {
      this.#fail(head.status);
      return;
    }
    if (head.kind === 'fallback') {
      // After the caller's EOF the Node server could not be handed the stream ('end' is already
      // emitted, no byte can be unshifted): a pipelined request it would serve is refused.
      if (this.#eof) {
        this.#fail(400);
        return;
      }
      this.#clearTimers();
      this.#state = S_GONE;
      this.socket.off('data', this.#onData);
      this.socket.off('end', this.#onEnd);
      this.#unwatch?.();
      this.#pending = undefined;
      this.host.fallback(this.socket, buf);
      return;
    }
    this.#clearTimers();
    this.#pending = head.headEnd < buf.length ? buf.subarray(head.headEnd) : undefined;
    this.#started = performance.now();
    this.#method = head.method;
    this.#closeAfter = head.close;
    this.#state = S_DECIDING;
    let decided: Decided | Promise<Decided>;
    try {
      decided = this.host.decide(this.verified, head.method, head.target, head.host, head.fields, this.#started);
    } catch {
      // A decision that cannot be made is a denial (fail closed), never a crash of the agent.
      this.#fail(403, 'ERR_AGENT_REQUEST_DENIED');
      return;
    }
    if (decided instanceof Promise) {
      this.socket.pause();
      void decided.then((d) => {
        if (this.#state !== S_DECIDING) return;
        this.socket.resume();
        this.#decided(d, head.fields, head.contentLength, head.connectionListed, head.host);
      }, () => this.socket.destroy()); // a verifier failure fails closed
    } else {
      this.#decided(decided, head.fields, head.contentLength, head.connectionListed, head.host);
    }
  }

  #decided(d: Decided, fields: readonly HeadField[], contentLength: number, listed: readonly string[] | undefined, host: string): void {
    if (!d.allow) {
      // A denied request's body is not read: the connection closes after the answer.
      const close = d.closeAfter || this.#closeAfter || contentLength > 0;
      this.socket.write(errorResponse(d.status, d.code, close));
      if (close) {
        this.#state = S_GONE;
        this.socket.end();
        return;
      }
      this.#next();
      return;
    }
    this.#path = d.path;
    this.#policy = d.policy;
    this.#sentHead = false;
    if (this.#eof && contentLength > (this.#pending?.length ?? 0)) {
      // The caller has shut its side before sending the whole body: never forwarded.
      this.#state = S_BODY;
      this.#bodyCut();
      return;
    }
    const out = forwardedHead(this.#method, d.path + d.query, host, fields, listed, d.identity);
    this.#resState = R_HEAD;
    this.#scanner = undefined;
    this.#replayable = contentLength === 0 && IDEMPOTENT.has(this.#method) ? out : undefined;
    const app = this.pool.acquire();
    this.#app = app;
    app.exchange = this;
    app.socket.write(out, 'latin1');
    this.#bodyLeft = contentLength;
    if (contentLength === 0) {
      this.#state = S_RESPONSE;
      return;
    }
    this.#state = S_BODY;
    const rest = this.#pending;
    this.#pending = undefined;
    if (rest !== undefined) this.#forwardBody(rest, 0);
    if (this.#state === S_BODY) {
      this.#bodyTimer = setTimeout(() => {
        this.#bodyTimer = undefined;
        if (this.#state === S_BODY) this.socket.destroy();
      }, this.host.requestTimeoutMs);
    }
  }

  #forwardBody(chunk: Buffer, from: number): void {
    const app = this.#app;
    if (app === undefined) return;
    const n = Math.min(this.#bodyLeft, chunk.length - from);
    this.#bodyLeft -= n;
    const ok = app.socket.write(n === chunk.length ? chunk : chunk.subarray(from, from + n));
    if (from + n < chunk.length) this.#pending = chunk.subarray(from + n);
    if (this.#bodyLeft === 0) {
      this.#state = S_RESPONSE;
      if (this.#bodyTimer !== undefined) clearTimeout(this.#bodyTimer);
      this.#bodyTimer = undefined;
      if (this.#pending !== undefined && this.#pending.length > this.host.maxHeaderBytes) this.socket.pause();
    } else if (!ok) {
      this.socket.pause();
      app.socket.once('drain', () => this.socket.resume());
    }
  }

  // --- the response, from the app ---------------------------------------------------------

  onAppData(chunk: Buffer): void {
    const app = this.#app;
    if (app === undefined) return;
    if (this.#resState === R_HEAD) {
      const buf = app.rbuf === undefined ? chunk : Buffer.concat([app.rbuf, chunk]);
      app.rbuf = undefined;
      this.#responseHead(app, buf);
      return;
    }
    this.#responseBody(app, chunk, 0);
  }

  #responseHead(app: AppConn, buf: Buffer): void {
    let start = 0;
    for (;;) {
      const head = parseResponseHead(buf, start, buf.length, APP_HEAD_LIMIT);
      if (head.kind === 'incomplete') {
        app.rbuf = start === 0 ? buf : buf.subarray(start);
        return;
      }
      if (head.kind === 'error' || head.status === 101) {
        this.#appFailed();
        return;
      }
      const interim = head.status < 200;
      const noBody = interim || head.status === 204 || head.status === 304 || this.#method === 'HEAD';
      const untilClose = !noBody && !head.chunked && head.contentLength === -1;
      const closeClient = !interim && (this.#closeAfter || untilClose);
      this.#closeAfter = closeClient;
      if (!interim) {
        this.#status = head.status;
        this.#keepApp = !head.close && !untilClose;
      }
      let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
      for (const f of head.fields) {
        if (DROP_RESPONSE.has(f.name) || (head.connectionListed !== undefined && head.connectionListed.includes(f.name))) continue;
        out += `${f.raw}: ${f.value}\r\n`;
      }
      if (closeClient) out += 'connection: close\r\n';
      out += '\r\n';
      this.#sentHead = true;
      start = head.headEnd;
      // Sent with the first body bytes when they are here (one TLS record, one syscall).
      if (!interim && !noBody && head.contentLength !== 0 && start < buf.length) this.#headOut = out;
      else this.socket.write(out, 'latin1');
      if (interim) continue;
      if (noBody) {
        if (start < buf.length) this.#keepApp = false; // bytes after a bodiless response
        this.#responseDone();
        return;
      }
      if (head.chunked) {
        this.#resState = R_CHUNKED;
        this.#scanner = new ChunkedScanner();
      } else if (untilClose) {
        this.#resState = R_UNTIL_CLOSE;
      } else {
        this.#resState = R_LENGTH;
        this.#resLeft = head.contentLength;
        if (this.#resLeft === 0) {
          if (start < buf.length) this.#keepApp = false;
          this.#responseDone();
          return;
        }
      }
      if (start < buf.length) this.#responseBody(app, buf, start);
      return;
    }
  }

  #responseBody(app: AppConn, chunk: Buffer, from: number): void {
    let end = chunk.length;
    let finished = false;
    if (this.#resState === R_LENGTH) {
      const n = Math.min(this.#resLeft, end - from);
      this.#resLeft -= n;
      if (from + n < end) this.#keepApp = false; // more bytes than declared
      end = from + n;
      finished = this.#resLeft === 0;
    } else if (this.#resState === R_CHUNKED) {
      const at = (this.#scanner as ChunkedScanner).scan(chunk, from, end);
      if (at === -2) {
        this.#appFailed();
        return;
      }
      if (at >= 0) {
        if (at < end) this.#keepApp = false;
        end = at;
        finished = true;
      }
    }
    let ok: boolean;
    const headOut = this.#headOut;
    if (headOut !== undefined) {
      this.#headOut = undefined;
      // Head and a small body in one write (one TLS record, one syscall); large bodies separately.
      if (end - from <= COALESCE_BYTES) {
        ok = this.socket.write(headOut + chunk.toString('latin1', from, end), 'latin1');
      } else {
        this.socket.write(headOut, 'latin1');
        ok = this.socket.write(chunk.subarray(from, end));
      }
    } else {
      ok = this.socket.write(from === 0 && end === chunk.length ? chunk : chunk.subarray(from, end));
    }
    if (finished) {
      this.#responseDone();
    } else if (!ok) {
      app.socket.pause();
      this.socket.once('drain', () => app.socket.resume());
    }
  }

  onAppEnd(): void {
    if (this.#resState === R_UNTIL_CLOSE) {
      this.#keepApp = false;
      this.#responseDone();
    }
  }

  onAppClose(): void {
    const app = this.#app;
    if (app === undefined) return;
    if (this.#resState === R_UNTIL_CLOSE) {
      this.#keepApp = false;
      this.#responseDone();
      return;
    }
    // Closed mid-exchange. A reused idle connection the app closed before answering a bodiless
    // idempotent request is retried once on a new connection; anything else is a 502 or a cut.
    this.#app = undefined;
    app.exchange = undefined;
    if (!this.#sentHead && app.reused && this.#replayable !== undefined && this.#state === S_RESPONSE && app.rbuf === undefined) {
      const fresh = this.pool.acquire();
      fresh.reused = false;
      const head = this.#replayable;
      this.#replayable = undefined;
      this.#app = fresh;
      fresh.exchange = this;
      fresh.socket.write(head, 'latin1');
      return;
    }
    this.#appFailed();
  }

  #appFailed(): void {
    const app = this.#app;
    this.#app = undefined;
    if (app !== undefined) {
      app.exchange = undefined;
      app.socket.destroy();
    }
    if (this.#sentHead || this.#state === S_GONE) {
      this.socket.destroy();
      return;
    }
    this.#state = S_GONE;
    this.host.recordAllowed(this.verified, this.#method, this.#path, 502, this.#policy, this.#started);
    this.socket.end(errorResponse(502, 'ERR_AGENT_UPSTREAM', true));
  }

  #responseDone(): void {
    const app = this.#app;
    this.#app = undefined;
    if (app !== undefined) {
      app.exchange = undefined;
      app.rbuf = undefined;
      if (this.#keepApp && this.#state === S_RESPONSE) this.pool.release(app);
      else app.socket.destroy();
    }
    this.#keepApp = true;
    this.#resState = R_HEAD;
    this.host.recordAllowed(this.verified, this.#method, this.#path, this.#status, this.#policy, this.#started);
    if (this.#state === S_BODY) {
      // The app answered before the whole body arrived: the rest of it cannot be framed.
      this.#closeAfter = true;
    }
    if (this.#closeAfter) {
      this.#state = S_GONE;
      this.socket.end();
      return;
    }
    this.#next();
  }

  #next(): void {
    this.#state = S_HEAD;
    // A caller that pipelines requests but does not read the answers must not make the agent
    // buffer them without bound: the next request is read once the last answer has drained.
    if (this.socket.writableNeedDrain) {
      this.socket.pause();
      this.socket.once('drain', () => {
        if (this.#state === S_HEAD) this.#next();
      });
      return;
    }
    this.socket.resume();
    // Between keep-alive requests the socket's idle timeout applies; the headers timeout starts
    // with the first byte of the next head.
    if (this.#pending !== undefined) process.nextTick(() => this.#parse());
    // Half-closed caller: every request it sent in full has been answered.
    else if (this.#eof) this.#finish();
  }
}
