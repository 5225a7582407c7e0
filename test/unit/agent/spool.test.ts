// The event spool: ordered sequence numbers, disk spooling while the sink is down, replay with
// original numbers, the size bound, torn-write recovery, and a real crash (SIGKILL).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { EventSpool } from '../../../src/agent/spool/spool.js';
import type { EventBatch, EventSink } from '../../../src/agent/spool/sink.js';
import { AgentMetrics } from '../../../src/agent/metrics.js';
import type { AgentEvent } from '../../../src/agent/events.js';

const ev = (n: number): AgentEvent => ({ class: 'network_activity', time: n, direction: 'inbound', source: 'spiffe://t/a', destination: 'spiffe://t/b', port: 1, verdict: 'allowed', policy: 'p/r', bytesIn: n, bytesOut: 0, durationMs: 0 });

/** A sink that can be switched down, and records every seq it acknowledged. */
class FakeSink implements EventSink {
  up = true;
  readonly received: number[] = [];
  readonly batches: EventBatch[] = [];
  waiters: (() => void)[] = [];
  async send(batch: EventBatch): Promise<void> {
    if (!this.up) throw new Error('down');
    this.batches.push(batch);
    for (const e of batch.events) this.received.push(e.seq);
    for (const w of this.waiters.splice(0)) w();
  }
  async until(pred: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temp dir removed after the file's tests, even when one fails. */
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ward-spool-'));
  dirs.push(d);
  return d;
}

test('events get consecutive sequence numbers and arrive in order, in batches', async () => {
  const dir = tempDir();
  const sink = new FakeSink();
  const spool = await EventSpool.open({ dir, agentId: 'a1', sink, batchSize: 7, flushIntervalMs: 5 });
  spool.start();
  for (let i = 1; i <= 30; i++) spool.record(ev(i));
  await sink.until(() => sink.received.length === 30);
  assert.deepEqual(sink.received, Array.from({ length: 30 }, (_, i) => i + 1));
  assert.ok(sink.batches.every((b) => b.events.length <= 7 && b.agentId === 'a1'));
  await sink.until(() => spool.stats.ackedSeq === 30);
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
});

test('while the sink is down events are spooled to disk, then replayed with their original numbers, none lost or repeated', async () => {
  const dir = tempDir();
  const sink = new FakeSink();
  sink.up = false;
  const spool = await EventSpool.open({ dir, agentId: 'a1', sink, flushIntervalMs: 5, retryMinMs: 10, retryMaxMs: 50, segmentBytes: 2048 });
  spool.start();
  for (let i = 1; i <= 200; i++) {
    spool.record(ev(i));
    if (i % 25 === 0) await spool.flush();
  }
  assert.ok(readdirSync(dir).filter((n) => n.endsWith('.wsp')).length > 1, 'spooled across several segments');
  assert.equal(spool.stats.pending, 200);
  // restart while down: the spool recovers from disk
  await spool.close();
  const again = await EventSpool.open({ dir, agentId: 'a1', sink, flushIntervalMs: 5, retryMinMs: 10, retryMaxMs: 50, segmentBytes: 2048 });
  assert.equal(again.stats.lastSeq, 200);
  again.start();
  again.record(ev(201));
  sink.up = true;
  await sink.until(() => sink.received.length >= 201);
  assert.deepEqual(sink.received, Array.from({ length: 201 }, (_, i) => i + 1));
  await sink.until(() => again.stats.ackedSeq === 201);
  await again.close();
  // after full acknowledgement a restart continues the sequence, never reuses it
  const third = await EventSpool.open({ dir, agentId: 'a1', sink });
  third.record(ev(202));
  assert.equal(third.stats.lastSeq, 202);
  await third.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the spool is bounded: beyond maxBytes new events are dropped and counted', async () => {
  const dir = tempDir();
  const sink = new FakeSink();
  sink.up = false;
  const metrics = new AgentMetrics();
  const spool = await EventSpool.open({ dir, agentId: 'a1', sink, maxBytes: 4096, flushIntervalMs: 5, metrics });
  for (let i = 1; i <= 500; i++) spool.record(ev(i));
  await spool.flush();
  const { dropped, lastSeq } = spool.stats;
  assert.ok(dropped > 0 && lastSeq > 0 && dropped + lastSeq === 500, `dropped ${dropped} kept ${lastSeq}`);
  assert.equal((await metrics.spoolDropped.get()).values[0]?.value, dropped);
  sink.up = true;
  spool.start();
  await sink.until(() => sink.received.length === lastSeq);
  assert.equal(sink.batches.at(-1)?.dropped, dropped, 'the sink learns how many were dropped');
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a torn or corrupt tail is cut off on recovery and everything before it is kept', async () => {
  const dir = tempDir();
  const sink = new FakeSink();
  sink.up = false;
  const spool = await EventSpool.open({ dir, agentId: 'a1', sink });
  for (let i = 1; i <= 10; i++) spool.record(ev(i));
  await spool.close();
  const seg = readdirSync(dir).find((n) => n.endsWith('.wsp')) as string;
  appendFileSync(join(dir, seg), Buffer.from([0, 0, 0, 40, 1, 2, 3, 4, 123, 34]));
  const recovered = await EventSpool.open({ dir, agentId: 'a1', sink });
  assert.equal(recovered.stats.lastSeq, 10);
  assert.equal(recovered.stats.corruptTails, 1);
  recovered.record(ev(11));
  sink.up = true;
  recovered.start();
  await sink.until(() => sink.received.length === 11);
  assert.deepEqual(sink.received, Array.from({ length: 11 }, (_, i) => i + 1));
  await recovered.close();
  // an unreadable ack file means "resend everything left": duplicates are possible, loss is not
  writeFileSync(join(dir, 'ack.json'), '{garbage');
  const fresh = await EventSpool.open({ dir, agentId: 'a1', sink });
  assert.ok(fresh.stats.lastSeq >= 11);
  await fresh.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a process killed with SIGKILL loses no flushed event', async () => {
  const dir = tempDir();
  const script = `
    import { EventSpool } from ${JSON.stringify(new URL('../../../src/agent/spool/spool.ts', import.meta.url).pathname)};
    const spool = await EventSpool.open({ dir: ${JSON.stringify(dir)}, agentId: 'a1', sink: { send: () => new Promise(() => {}) }, flushIntervalMs: 1 });
    let i = 0;
    const tick = async () => {
      for (let k = 0; k < 50; k++) spool.record({ class: 'network_activity', time: ++i, direction: 'inbound', source: 's', destination: 'd', port: 1, verdict: 'allowed', policy: 'p', bytesIn: 0, bytesOut: 0, durationMs: 0 });
      await spool.flush();
      process.stdout.write(i + '\\n');
      setImmediate(tick);
    };
    tick();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let durable = 0;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      const lines = c.toString().trim().split('\n');
      durable = Number(lines.at(-1));
      if (durable >= 2000 && child.exitCode === null) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 20_000).unref();
  });
  await new Promise((r) => child.once('exit', r));
  assert.ok(durable >= 2000, 'the child made progress');
  const sink = new FakeSink();
  const spool = await EventSpool.open({ dir, agentId: 'a1', sink, batchSize: 1000 });
  assert.ok(spool.stats.lastSeq >= durable, `every event reported flushed (${durable}) is on disk (${spool.stats.lastSeq})`);
  spool.start();
  await sink.until(() => sink.received.length === spool.stats.lastSeq, 10_000);
  assert.deepEqual(sink.received, Array.from({ length: spool.stats.lastSeq }, (_, i) => i + 1));
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
});
