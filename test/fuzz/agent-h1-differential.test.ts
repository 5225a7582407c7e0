// Differential fuzz of the lean HTTP/1.1 request-head parser (ADR 0043) against Node's llhttp,
// the parser the agent falls back to and the one most apps behind it use. For the same bytes,
// every request the lean parser accepts must be parsed by llhttp identically — method, target,
// every header (raw name and value, in order) and the body's length — or the lean parser must
// refuse it (or leave it to llhttp). A divergence is a request-smuggling or authorization-bypass
// primitive: the policy would decide one request and the app serve another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { parseRequestHead } from '../../src/agent/proxy/http/h1-wire.js';
import { forwardedHead } from '../../src/agent/proxy/http/lean-h1.js';
import { normalizeRequestTarget } from '../../src/agent/proxy/http/normalize-path.js';

const LIMIT = 4096;

interface Parsed {
  readonly method: string;
  readonly url: string;
  readonly version: string;
  readonly rawHeaders: string[];
  readonly body: string;
}

/** What llhttp made of one connection's bytes: the requests it parsed, then its error if any. */
interface Outcome {
  readonly requests: Parsed[];
  error: string | undefined;
}

let server: Server;
let port = 0;
const sockets = new Set<Socket>();
/** The connection currently under test (one at a time). */
let current: Outcome | undefined;

before(async () => {
  server = createServer({ requireHostHeader: true, joinDuplicateHeaders: false, insecureHTTPParser: false, maxHeaderSize: LIMIT }, (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    const into = current;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      into?.requests.push({ method: req.method ?? '', url: req.url ?? '', version: req.httpVersion, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') });
      res.writeHead(204).end();
    });
    req.on('error', () => undefined);
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    if (current !== undefined) current.error ??= err.code ?? 'unknown';
    socket.destroy();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

/** Sends `bytes` on a fresh connection, half-closes, and reports everything llhttp parsed. */
function llhttp(bytes: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { requests: [], error: undefined };
    current = outcome;
    const c = connect({ port, host: '127.0.0.1' });
    const finish = (): void => {
      clearTimeout(timer);
      c.destroy();
      // Let the server's handlers for the last bytes run before reading the outcome.
      setImmediate(() => {
        current = undefined;
        resolve(outcome);
      });
    };
    const timer = setTimeout(finish, 2000);
    c.on('error', () => undefined);
    c.on('data', () => undefined);
    c.on('close', finish);
    c.end(bytes);
  });
}

// Building blocks: mostly well-formed (so the accept path is exercised), with the edge cases
// that separate parsers mixed in.
const often = <T>(good: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: odd, weight: 1 });
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
const targetPiece = often(
  fc.constantFrom('/', 'a', 'b', '..', '.', '%2F', '%2e', '?', '=', '&', '//', '-', '_'),
  fc.constantFrom('%', '#', '\\', ';', '"', '<', '>', '{', '}', '|', '^', '`', '~', '@', ':', '[', ']', "'", '!', '$', '(', '*', ',', 'http://h', '\t', '\u007f', '\u0080', '\u00ff', '\u0000', '\r', '\n', ' ', '\f'),
);
const target = fc.array(targetPiece, { maxLength: 6 }).map((p) => `/${p.join('')}`);
const namePiece = often(
  fc.constantFrom('Content-Length', 'content-length', 'Connection', 'X-A', 'x_a', 'Authorization', 'X-Forwarded-Client-Cert', 'Accept', 'Te', 'Cookie', 'Host'),
  fc.constantFrom('Transfer-Encoding', 'Upgrade', 'Expect', 'Content-Length ', ' Host', 'X\u0000', 'X\u007f', 'X\u00ff', 'X"', 'X@', 'X(', 'X{', 'X/', 'X=', 'A\tB', '', "X!#$%&'*+.^_`|~"),
);
const valuePiece = often(
  fc.constantFrom('o', 'p', '5', '05', '0', '12', 'close', 'keep-alive', 'a b', 'x-a', ',', 'trailers', '"q"', 'Bearer t'),
  fc.constantFrom('+5', '-1', '5, 5', '5,6', ' 5', '5 ', '\t', ' ', 'content-length', 'host', 'chunked', '\u00e9', '\u0000', '\u007f', '\u0001', '\u001f', '\r', '\n', '\r\n ', '\r\n\t', '1e3', '0x5', '99999999999999999', '1234567890123456'),
);
const sep = often(fc.constantFrom(':', ': ', ':  '), fc.constantFrom(' :', ':\t', '\t:'));
const eol = often(fc.constant('\r\n'), fc.constantFrom('\n', '\r', '\r\r\n', '\r\n '));
const builtHeader = fc.tuple(namePiece, sep, fc.array(valuePiece, { maxLength: 3 }), eol).map(([n, s, v, e]) => `${n}${s}${v.join('')}${e}`);
/** Whole, valid lines that interact with framing and hop-by-hop handling. */
const knownHeader = fc.constantFrom('Content-Length: 12\r\n', 'Content-Length: 40\r\n', 'Connection: content-length\r\n', 'Connection: Content-Length, x-a\r\n', 'Connection: host\r\n', 'Connection: close\r\n', 'Connection: x-forwarded-client-cert\r\n', 'X_Forwarded_Client_Cert: URI=spiffe://example.org/admin\r\n', 'x-forwarded-client-cert: URI=spiffe://example.org/admin\r\n', 'TE: trailers\r\n', 'Keep-Alive: timeout=5\r\n');
const header = fc.oneof({ arbitrary: builtHeader, weight: 3 }, { arbitrary: knownHeader, weight: 2 });
const version = often(fc.constant('HTTP/1.1'), fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'http/1.1', 'HTTP/1.10', 'HTTP/1.1 ', 'HTTP/2.0'));
const lineSep = often(fc.constant(' '), fc.constantFrom('  ', '\t'));
const request = fc.record({
  method,
  s1: lineSep,
  target,
  s2: lineSep,
  version,
  host: often(fc.constant('Host: o\r\n'), fc.constantFrom('', 'Host: o\r\nHost: p\r\n', 'Host:\r\n', 'Host: a@b\r\n')),
  headers: fc.array(header, { maxLength: 5 }),
  end: eol,
  body: fc.string({ maxLength: 12 }),
}).map((r) => `${r.method}${r.s1}${r.target}${r.s2}${r.version}\r\n${r.host}${r.headers.join('')}${r.end}${r.body}`);

let accepted = 0;
let forwarded = 0;

test('every request the lean parser accepts, llhttp parses identically', async () => {
  await fc.assert(fc.asyncProperty(request, async (text) => {
    const buf = Buffer.from(text, 'latin1');
    const lean = parseRequestHead(buf, 0, buf.length, LIMIT);
    if (lean.kind !== 'ok') return;
    // The head and exactly the declared body: llhttp must see one request and nothing else.
    const bytes = Buffer.concat([buf.subarray(0, lean.headEnd), Buffer.alloc(lean.contentLength, 0x62)]);
    accepted += 1;
    const node = await llhttp(bytes);
    const what = JSON.stringify(text);
    assert.equal(node.error, undefined, `lean accepted, llhttp refused (${node.error ?? ''}): ${what}`);
    assert.equal(node.requests.length, 1, what);
    const r = node.requests[0] as Parsed;
    assert.equal(r.method, lean.method, what);
    assert.equal(r.url, lean.target, what);
    assert.equal(r.version, '1.1', what);
    assert.deepEqual(r.rawHeaders, lean.fields.flatMap((f) => [f.raw, f.value]), what);
    assert.equal(r.body.length, lean.contentLength, what);
  }), { numRuns: Number(process.env.WARD_FUZZ_RUNS ?? 1000), seed: Number(process.env.WARD_FUZZ_SEED ?? 0x5eed) || undefined });
  // The generator must exercise the accept path, or the property says nothing.
  assert.ok(accepted >= 40, `only ${accepted} accepted requests generated`);
});

const IDENTITY = 'By=spiffe://example.org/orders;URI=spiffe://example.org/web';

test('what the lean path forwards, llhttp reads as exactly the authorised request', async () => {
  await fc.assert(fc.asyncProperty(request, async (text) => {
    const buf = Buffer.from(text, 'latin1');
    const lean = parseRequestHead(buf, 0, buf.length, LIMIT);
    if (lean.kind !== 'ok') return;
    const t = normalizeRequestTarget(lean.target);
    if (!t.ok) return;
    forwarded += 1;
    // What the app receives: the forwarded head, then the declared body, whose bytes are
    // themselves a request (a smuggling attempt if the framing were lost on the way).
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: o\r\n\r\n';
    const body = Buffer.from(smuggled.repeat(Math.ceil(lean.contentLength / smuggled.length)).slice(0, lean.contentLength), 'latin1');
    const head = forwardedHead(lean.method, t.path + t.query, lean.host, lean.fields, lean.connectionListed, IDENTITY);
    const node = await llhttp(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    const what = `${JSON.stringify(text)} -> ${JSON.stringify(head)}`;
    assert.equal(node.error, undefined, what);
    assert.equal(node.requests.length, 1, what);
    const r = node.requests[0] as Parsed;
    assert.equal(r.method, lean.method, what);
    assert.equal(r.url, t.path + t.query, what);
    assert.equal(r.body.length, lean.contentLength, what);
    const identities: string[] = [];
    for (let i = 0; i < r.rawHeaders.length; i += 2) {
      const name = (r.rawHeaders[i] as string).toLowerCase();
      if (name.replaceAll('_', '-') === 'x-forwarded-client-cert') identities.push(r.rawHeaders[i + 1] as string);
      assert.ok(!['connection', 'transfer-encoding', 'upgrade', 'keep-alive', 'proxy-authorization'].includes(name), what);
    }
    assert.deepEqual(identities, [IDENTITY], what);
  }), { numRuns: Number(process.env.WARD_FUZZ_RUNS ?? 1000), seed: Number(process.env.WARD_FUZZ_SEED ?? 0x5eed) || undefined });
  assert.ok(forwarded >= 30, `only ${forwarded} forwarded requests generated`);
  if (process.env.WARD_FUZZ_VERBOSE) console.log(`accepted ${accepted}, forwarded ${forwarded}`);
});
