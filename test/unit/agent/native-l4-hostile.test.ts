// The native relay (ADR 0049) against hostile and unlucky peers, driven through the addon itself
// so every decision point is under the test's control: descriptors come back after every kind of
// failure, a decision never lands on another connection (slot reuse, wrong decision point),
// bad ids are refused, a connection flood and descriptor exhaustion neither crash nor spin the
// relay thread, TLS 1.2 renegotiation is refused, destroy with live connections is clean.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { RelayEventKind, RelayListenerKind, loadRelayAddon, type RelayAddon, type RelayCloseReason, type RelayEngine } from '../../../src/agent/proxy/native/addon.js';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startEchoApp, roundTrip, waitClose } from './support/net.js';

const TD = 'spiffe://example.org';
const load = loadRelayAddon();
const skip = load.ok ? false : `native relay not built: ${load.ok ? '' : load.reason}`;
const SLOT_MASK = 0xffffff;
const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

let ca: TestCa;
let otherCa: TestCa;
let server: TestSvid;
let client: TestSvid;
let stranger: TestSvid;
let app: Awaited<ReturnType<typeof startEchoApp>>;

before(() => {
  if (!load.ok) return;
  ca = createTestCa('hostile');
  otherCa = createTestCa('hostile-other');
  server = ca.issue([`${TD}/orders`]);
  client = ca.issue([`${TD}/web`]);
  stranger = otherCa.issue([`${TD}/web`]);
  return startEchoApp().then((a) => void (app = a));
});

after(async () => {
  if (!load.ok) return;
  await app.close();
  ca.cleanup();
  otherCa.cleanup();
});

interface Ev {
  readonly kind: number;
  readonly conn: number;
  readonly listener: number;
  readonly reason: RelayCloseReason | undefined;
}

type Answer = 'allow' | 'deny' | 'hold';

/** One raw engine; `answer` decides each Accepted / Peer event (default: allow). */
class Raw {
  readonly addon: RelayAddon;
  readonly engine: RelayEngine;
  readonly events: Ev[] = [];
  answer: (ev: Ev) => Answer = () => 'allow';
  #nextListener = 1;

  constructor(limits: Partial<Parameters<RelayAddon['create']>[1]> = {}) {
    this.addon = (load as { addon: RelayAddon }).addon;
    this.engine = this.addon.create((kind, conn, listener, _der, _in, _out, reason) => {
      const ev = { kind, conn, listener, reason };
      this.events.push(ev);
      if (kind === RelayEventKind.Closed || kind === RelayEventKind.Handoff) return;
      const a = this.answer(ev);
      if (a === 'allow') this.addon.allow(this.engine, conn, kind);
      else if (a === 'deny') this.addon.deny(this.engine, conn);
    }, { handshakeTimeoutMs: 3000, connectTimeoutMs: 2000, idleTimeoutMs: 60000, decisionTimeoutMs: 3000, maxConnections: 10000, ...limits });
    this.addon.setTls(this.engine, 0, true, server.certPem, server.keyPem, ca.certPem);
    this.addon.setTls(this.engine, 1, false, client.certPem, client.keyPem, ca.certPem);
  }

  inbound(appPort: number): number {
    return this.addon.listen(this.engine, this.#nextListener++, RelayListenerKind.InboundTls, '127.0.0.1', 0, 0, '127.0.0.1', appPort);
  }

  outbound(targetPort: number): number {
    return this.addon.listen(this.engine, this.#nextListener++, RelayListenerKind.OutboundPlain, '127.0.0.1', 0, 1, '127.0.0.1', targetPort);
  }

  closed(): Ev[] {
    return this.events.filter((e) => e.kind === RelayEventKind.Closed);
  }

  destroy(): void {
    this.addon.destroy(this.engine);
  }
}

async function until<T>(fn: () => T | undefined | false, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fdCount = (): number => readdirSync('/proc/self/fd').length;

function tcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** An mTLS client; resolves with the socket or the handshake error. */
function tls(port: number, svid: TestSvid, extra: Record<string, unknown> = {}): Promise<TLSSocket | Error> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, cert: svid.certPem, key: svid.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined, ...extra });
    s.once('secureConnect', () => resolve(s));
    s.once('error', (e) => resolve(e));
  });
}

/** A TCP server counting the connections it accepts (echo). */
async function counting(): Promise<{ server: Server; port: number; count(): number; close(): Promise<void> }> {
  let n = 0;
  const socks = new Set<Socket>();
  const srv = createServer((s) => {
    n += 1;
    socks.add(s);
    s.on('error', () => undefined);
    s.on('close', () => socks.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    server: srv,
    port: (srv.address() as { port: number }).port,
    count: () => n,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      srv.close(() => r());
    }),
  };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('every failure path gives its descriptors back: refused app, garbage, foreign CA, denial, decision/handshake/idle timeouts, RST mid-transfer', { skip }, async () => {
  const raw = new Raw({ handshakeTimeoutMs: 400, decisionTimeoutMs: 400, idleTimeoutMs: 400 });
  try {
    const refused = raw.inbound(await deadPort());
    const good = raw.inbound(app.port);
    const out = raw.outbound(app.port);
    await sleep(50);
    const base = fdCount();
    const rounds = 3;
    let expected = 0;
    for (let i = 0; i < rounds; i++) {
      // 1. allowed, but the app port refuses
      const a = await tls(refused, client);
      assert.ok(!(a instanceof Error));
      await waitClose(a);
      // 2. TLS garbage
      const g = await tcp(good);
      g.write(Buffer.alloc(300, 0x16));
      g.on('error', () => undefined);
      await waitClose(g);
      // 3. a chain from another CA
      const f = await tls(good, stranger);
      if (!(f instanceof Error)) await waitClose(f);
      // 4. denied at the peer decision; 5. never answered (decision timeout)
      for (const answer of ['deny', 'hold'] as const) {
        raw.answer = () => answer;
        const d = await tls(good, client);
        if (!(d instanceof Error)) await waitClose(d);
        raw.answer = () => 'allow';
      }
      // 6. a client that says nothing (handshake timeout)
      const q = await tcp(good);
      q.on('error', () => undefined);
      await waitClose(q);
      // 7. relayed, then idle
      const r = await tls(good, client);
      assert.ok(!(r instanceof Error));
      assert.equal((await roundTrip(r, 'ping', 4)).data, 'ping');
      await waitClose(r);
      // 8. relayed, RST mid-transfer
      const under = await tcp(good);
      under.on('error', () => undefined);
      const m = await tls(good, client, { socket: under });
      assert.ok(!(m instanceof Error));
      m.on('error', () => undefined);
      m.write(Buffer.alloc(256 * 1024, 1));
      await sleep(5);
      under.resetAndDestroy();
      // 9. outbound: egress denied; 10. egress never answered
      for (const answer of ['deny', 'hold'] as const) {
        raw.answer = (ev) => (ev.kind === RelayEventKind.Accepted ? answer : 'allow');
        const o = await tcp(out);
        o.on('error', () => undefined);
        await waitClose(o);
        raw.answer = () => 'allow';
      }
      expected += 10;
    }
    const reasons = await until(() => (raw.closed().length >= expected ? raw.closed().map((e) => e.reason) : undefined));
    for (const reason of ['connect', 'handshake', 'verify', 'denied', 'decision', 'idle'] as const) assert.ok(reasons.includes(reason), `a ${reason} close`);
    assert.equal(await until(() => fdCount() === base && base, 3000), base, 'descriptors back to the baseline');
  } finally {
    raw.destroy();
  }
});

test('a decision for a closed connection never applies to the one that reuses its slot (ids carry a generation)', { skip }, async () => {
  const target = await counting();
  const raw = new Raw({ decisionTimeoutMs: 600 });
  try {
    raw.answer = () => 'hold';
    const port = raw.outbound(target.port);
    const a = await tcp(port);
    a.on('error', () => undefined);
    const first = await until(() => raw.events.find((e) => e.kind === RelayEventKind.Accepted));
    raw.addon.deny(raw.engine, first.conn);
    await waitClose(a);
    const b = await tcp(port);
    b.on('error', () => undefined);
    const second = await until(() => raw.events.find((e) => e.kind === RelayEventKind.Accepted && e.conn !== first.conn));
    assert.equal(second.conn & SLOT_MASK, first.conn & SLOT_MASK, 'the slot was reused');
    // The stale allow (for the first connection's id) must not move the second one on.
    raw.addon.allow(raw.engine, first.conn, RelayEventKind.Accepted);
    await sleep(200);
    assert.equal(target.count(), 0);
    assert.equal(await waitClose(b), true);
    // The client can see the close before the relay's Closed event reaches JavaScript: wait for it.
    const closed = await until(() => raw.closed().find((e) => e.conn === second.conn));
    assert.equal(closed.reason, 'decision');
    assert.equal(target.count(), 0, 'the target never saw the second connection');
  } finally {
    raw.destroy();
    await target.close();
  }
});

test('an allow answering the wrong decision point is ignored: an egress allow never stands in for the peer check', { skip }, async () => {
  const target = await counting();
  const raw = new Raw({ decisionTimeoutMs: 500 });
  try {
    // Inbound: the peer decision is answered with an allow for the Accepted stage (a bug in JS).
    raw.answer = (ev) => {
      raw.addon.allow(raw.engine, ev.conn, RelayEventKind.Accepted);
      return 'hold';
    };
    const port = raw.inbound(target.port);
    const s = await tls(port, client);
    assert.ok(!(s instanceof Error));
    s.on('error', () => undefined);
    s.write('x');
    const reason = (await until(() => raw.closed()[0])).reason;
    assert.equal(reason, 'decision', `closed for ${reason}`);
    assert.equal(target.count(), 0, 'never relayed to the app');
    // And the right stage does relay (the test would pass vacuously otherwise).
    raw.answer = () => 'allow';
    const ok = await tls(port, client);
    assert.ok(!(ok instanceof Error));
    assert.equal((await roundTrip(ok, 'hi', 2)).data, 'hi');
    ok.destroy();
  } finally {
    raw.destroy();
    await target.close();
  }
});

test('connection ids that did not come from an event are refused with ERR_RELAY_ARG, as are unknown stages', { skip }, () => {
  const raw = new Raw();
  try {
    for (const bad of [Number.NaN, -1, 0, 1.5, 2 ** 60, Number.POSITIVE_INFINITY]) {
      for (const call of [() => raw.addon.deny(raw.engine, bad), () => raw.addon.close(raw.engine, bad), () => raw.addon.allow(raw.engine, bad, RelayEventKind.Peer)]) {
        assert.throws(call, (e: NodeJS.ErrnoException) => e.code === 'ERR_RELAY_ARG', `id ${bad}`);
      }
    }
    assert.throws(() => raw.addon.allow(raw.engine, 1, RelayEventKind.Closed as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_RELAY_ARG');
    assert.throws(() => raw.addon.listen(raw.engine, 9, 7 as never, '127.0.0.1', 0, 0, '127.0.0.1', 80), (e: NodeJS.ErrnoException) => e.code === 'EINVAL');
    assert.throws(() => raw.addon.listen(raw.engine, 9, RelayListenerKind.InboundTls, '127.0.0.1', 0, 0, '127.0.0.1', 70000), (e: NodeJS.ErrnoException) => e.code === 'EINVAL');
  } finally {
    raw.destroy();
  }
});

test('a flood beyond maxConnections is shed at accept; the relay then serves new connections and gives every descriptor back', { skip }, async () => {
  const raw = new Raw({ maxConnections: 20, decisionTimeoutMs: 10000 });
  try {
    raw.answer = () => 'hold';
    const port = raw.outbound(app.port);
    await sleep(50);
    const base = fdCount();
    const socks = await Promise.all(Array.from({ length: 300 }, () => tcp(port).then((s) => {
      s.on('error', () => undefined);
      return s;
    }, () => undefined)));
    const held = await until(() => {
      const n = raw.events.filter((e) => e.kind === RelayEventKind.Accepted).length;
      return n >= 20 ? n : undefined;
    });
    await sleep(200);
    assert.equal(raw.events.filter((e) => e.kind === RelayEventKind.Accepted).length, 20, `at most 20 held (saw ${held})`);
    for (const e of raw.events.filter((x) => x.kind === RelayEventKind.Accepted)) raw.addon.deny(raw.engine, e.conn);
    for (const s of socks) s?.destroy();
    await until(() => raw.closed().length === 20);
    raw.answer = () => 'allow';
    const s = await tcp(port);
    await until(() => raw.events.filter((e) => e.kind === RelayEventKind.Accepted).length === 21);
    s.destroy();
    assert.equal(await until(() => fdCount() === base && base, 3000), base);
  } finally {
    raw.destroy();
  }
});

test('descriptor exhaustion does not spin the relay thread (accept pauses on EMFILE, resumes when descriptors free up)', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-emfile-'));
  const script = join(dir, 'child.mjs');
  writeFileSync(script, `
    import { createRequire } from 'node:module';
    const a = createRequire(import.meta.url)(process.env.WARD_ADDON);
    const e = a.create((kind, conn) => { if (kind === 1 && process.env.WARD_ALLOW === '1') a.deny(e, conn); },
      { handshakeTimeoutMs: 60000, connectTimeoutMs: 5000, idleTimeoutMs: 60000, decisionTimeoutMs: 60000, maxConnections: 100000 });
    const port = a.listen(e, 1, 2, '127.0.0.1', 0, 1, '127.0.0.1', 9);
    a.ref(e, true);
    process.stdout.write(port + '\\n');
    process.stdin.on('data', () => { process.env.WARD_ALLOW = '1'; });
  `);
  const child = spawn('sh', ['-c', `ulimit -n 48 && exec "${process.execPath}" "${script}"`], { env: { ...process.env, WARD_ADDON: join(process.cwd(), 'build', 'Release', 'ward_relay.node') }, stdio: ['pipe', 'pipe', 'inherit'] });
  const socks: Socket[] = [];
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    // Far more connections than the child has descriptors: the rest wait in its backlog.
    for (let i = 0; i < 80; i++) {
      const s = netConnect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      socks.push(s);
    }
    await sleep(300);
    const cpu = (): number => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks
    };
    const c0 = cpu();
    await sleep(1000);
    const used = cpu() - c0;
    assert.ok(used < 25, `relay thread spun: ${used} ticks of CPU in 1 s while out of descriptors`);
    // Freeing descriptors (deny the held ones from now on) lets accepting resume.
    child.stdin.write('go\n');
    for (const s of socks.slice(0, 20)) s.destroy();
  } finally {
    for (const s of socks) s.destroy();
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS 1.2 peers are relayed; their renegotiation attempts are refused and the relay keeps serving', { skip }, async () => {
  const raw = new Raw();
  try {
    const port = raw.inbound(app.port);
    const s = await tls(port, client, { maxVersion: 'TLSv1.2' });
    assert.ok(!(s instanceof Error));
    assert.equal(s.getProtocol(), 'TLSv1.2');
    assert.equal((await roundTrip(s, 'before', 6)).data, 'before');
    const renegotiated = await new Promise<boolean>((resolve) => {
      s.on('error', () => resolve(false));
      s.once('close', () => resolve(false));
      const started = s.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err == null));
      if (!started) resolve(false);
    });
    assert.equal(renegotiated, false, 'renegotiation must not succeed');
    s.destroy();
    const again = await tls(port, client, { maxVersion: 'TLSv1.2' });
    assert.ok(!(again instanceof Error));
    assert.equal((await roundTrip(again, 'after', 5)).data, 'after');
    again.destroy();
  } finally {
    raw.destroy();
  }
});

test('an app that closes first, and destroy with live connections: peers see the close, no events after destroy, descriptors back', { skip }, async () => {
  const closer = createServer((s) => s.end('bye'));
  await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r));
  const raw = new Raw();
  const base = fdCount();
  try {
    const port = raw.inbound((closer.address() as { port: number }).port);
    const s = await tls(port, client);
    assert.ok(!(s instanceof Error));
    const r = await roundTrip(s, '', 3);
    assert.equal(r.data, 'bye');
    assert.equal(await waitClose(s), true);
    await until(() => raw.closed().find((e) => e.reason === 'eof'));
    // Live, relayed connections when the engine goes away.
    const echo = raw.inbound(app.port);
    const live = await Promise.all([1, 2, 3].map(() => tls(echo, client)));
    for (const l of live) {
      assert.ok(!(l instanceof Error));
      assert.equal((await roundTrip(l, 'x', 1)).data, 'x');
    }
    const before = raw.events.length;
    raw.destroy();
    for (const l of live) assert.equal(await waitClose(l as TLSSocket), true);
    assert.equal(raw.events.length, before, 'no events after destroy');
    assert.throws(() => raw.addon.close(raw.engine, 1), (e: NodeJS.ErrnoException) => e.code === 'ERR_RELAY_CLOSED');
    assert.equal(await until(() => fdCount() <= base && base, 3000), base);
  } finally {
    raw.destroy();
    await new Promise<void>((r) => closer.close(() => r()));
  }
});

test('TLS 1.3 KeyUpdate from the peer (with and without update_requested) mid-stream: bytes keep flowing both ways', { skip: skip || (haveOpenssl ? false : 'no openssl binary') }, async () => {
  const raw = new Raw();
  const dir = mkdtempSync(join(tmpdir(), 'ward-keyupdate-'));
  try {
    const port = raw.inbound(app.port);
    writeFileSync(join(dir, 'c.crt'), client.certPem);
    writeFileSync(join(dir, 'c.key'), client.keyPem);
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    // s_client turns a line "K" into a KeyUpdate with update_requested, "k" into one without.
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-cert', join(dir, 'c.crt'), '-key', join(dir, 'c.key'), '-CAfile', join(dir, 'ca.pem')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    await until(() => raw.events.find((e) => e.kind === RelayEventKind.Peer));
    for (const line of ['one', 'K', 'two', 'k', 'three']) {
      p.stdin.write(`${line}\n`);
      if (line.length > 1) await until(() => out.includes(`${line}\n`), 3000);
      else await sleep(100);
    }
    assert.equal((out.match(/KEYUPDATE/g) ?? []).length, 2, 'both key updates were sent');
    p.stdin.end();
    const closed = await until(() => raw.closed()[0]);
    assert.equal(closed.reason, 'eof');
    p.kill();
  } finally {
    raw.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
