/**
 * The event spool: no event lost, none duplicated by the agent. Every event gets the next
 * per-agent sequence number, is appended to a segment file (group commit with fdatasync),
 * and is sent in order in batches; a batch is deleted from disk only once the sink
 * acknowledges it. When the sink is down or slow, events accumulate on disk up to `maxBytes`
 * (then new events are dropped and counted) and are replayed with their original sequence
 * numbers. After a crash, a torn tail record is cut off and everything before it is replayed.
 *
 * Window of loss on a crash: events recorded but not yet flushed (at most `flushIntervalMs`).
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentEvent, EventRecorder } from '../events.js';
import type { AgentMetrics } from '../metrics.js';
import { decodeRecords, encodeRecord, type SpoolRecord } from './record.js';
import type { EventSink } from './sink.js';

export interface SpoolOptions {
  readonly dir: string;
  readonly agentId: string;
  readonly sink: EventSink;
  readonly maxBytes?: number;
  readonly segmentBytes?: number;
  readonly batchSize?: number;
  readonly flushIntervalMs?: number;
  readonly sendTimeoutMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly metrics?: AgentMetrics;
}

interface Segment {
  readonly path: string;
  readonly firstSeq: number;
  lastSeq: number;
  bytes: number;
}

const SEGMENT_RE = /^seg-(\d{20})\.wsp$/;
const ACK_FILE = 'ack.json';

export interface SpoolStats {
  readonly lastSeq: number;
  readonly ackedSeq: number;
  readonly pending: number;
  readonly dropped: number;
  readonly diskBytes: number;
  readonly corruptTails: number;
}

export class EventSpool implements EventRecorder {
  readonly #o: Required<Omit<SpoolOptions, 'metrics'>> & { metrics: AgentMetrics | undefined };
  readonly #segments: Segment[] = [];
  #buffer: Buffer[] = [];
  #bufferBytes = 0;
  #bufferFirstSeq = 0;
  #lastSeq = 0;
  #acked = 0;
  #dropped = 0;
  #diskBytes = 0;
  #corruptTails = 0;
  #writer: FileHandle | undefined;
  #flushChain: Promise<void> = Promise.resolve();
  #flushTimer: NodeJS.Timeout | undefined;
  #stop = new AbortController();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  private constructor(options: SpoolOptions) {
    this.#o = {
      maxBytes: 64 * 1024 * 1024,
      segmentBytes: 1024 * 1024,
      batchSize: 500,
      flushIntervalMs: 50,
      sendTimeoutMs: 5000,
      retryMinMs: 100,
      retryMaxMs: 30_000,
      ...options,
      metrics: options.metrics,
    };
  }

  /** Opens (or recovers) the spool in `dir`. Call {@link start} to begin sending. */
  static async open(options: SpoolOptions): Promise<EventSpool> {
    const spool = new EventSpool(options);
    await spool.#recover();
    return spool;
  }

  async #recover(): Promise<void> {
    const { dir } = this.#o;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      const ack = JSON.parse(await readFile(join(dir, ACK_FILE), 'utf8')) as { acked?: unknown; dropped?: unknown };
      if (Number.isSafeInteger(ack.acked) && (ack.acked as number) >= 0) this.#acked = ack.acked as number;
      if (Number.isSafeInteger(ack.dropped) && (ack.dropped as number) >= 0) this.#dropped = ack.dropped as number;
    } catch {
      // No ack yet (or unreadable): resend from the start; the receiver de-duplicates.
    }
    const names = (await readdir(dir)).filter((n) => SEGMENT_RE.test(n)).sort();
    let last = this.#acked;
    for (const name of names) {
      const path = join(dir, name);
      const data = await readFile(path);
      const decoded = decodeRecords(data);
      if (decoded.corrupt) {
        this.#corruptTails += 1;
        await truncate(path, decoded.validBytes);
      }
      const recs = decoded.records.filter((r) => r.seq > last);
      if (recs.length === 0 || (recs.at(-1) as SpoolRecord).seq <= this.#acked) {
        await rm(path, { force: true });
        continue;
      }
      const firstSeq = Number((SEGMENT_RE.exec(name) as RegExpExecArray)[1]);
      this.#segments.push({ path, firstSeq, lastSeq: (recs.at(-1) as SpoolRecord).seq, bytes: decoded.validBytes });
      this.#diskBytes += decoded.validBytes;
      last = (recs.at(-1) as SpoolRecord).seq;
    }
    this.#lastSeq = last;
    this.#updateGauge();
  }

  get stats(): SpoolStats {
    return { lastSeq: this.#lastSeq, ackedSeq: this.#acked, pending: this.#lastSeq - this.#acked, dropped: this.#dropped, diskBytes: this.#diskBytes, corruptTails: this.#corruptTails };
  }

  /** Records one event; never throws, never blocks. */
  record(event: AgentEvent): void {
    const encoded = encodeRecord({ seq: this.#lastSeq + 1, event });
    if (this.#diskBytes + this.#bufferBytes + encoded.length > this.#o.maxBytes) {
      this.#dropped += 1;
      this.#o.metrics?.spoolDropped.inc();
      return;
    }
    this.#lastSeq += 1;
    if (this.#buffer.length === 0) this.#bufferFirstSeq = this.#lastSeq;
    this.#buffer.push(encoded);
    this.#bufferBytes += encoded.length;
    this.#updateGauge();
    if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(() => void this.flush(), this.#o.flushIntervalMs);
      this.#flushTimer.unref();
    }
  }

  /** Writes buffered events to disk and syncs them. */
  flush(): Promise<void> {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    this.#flushChain = this.#flushChain.then(() => this.#flushNow()).catch(() => undefined);
    return this.#flushChain;
  }

  async #flushNow(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const chunks = this.#buffer;
    const bytes = this.#bufferBytes;
    const firstSeq = this.#bufferFirstSeq;
    const lastSeq = firstSeq + chunks.length - 1;
    this.#buffer = [];
    this.#bufferBytes = 0;
    let seg = this.#segments.at(-1);
    if (seg === undefined || this.#writer === undefined || seg.bytes >= this.#o.segmentBytes) {
      await this.#writer?.close();
      const path = join(this.#o.dir, `seg-${String(firstSeq).padStart(20, '0')}.wsp`);
      this.#writer = await open(path, 'a', 0o600);
      seg = { path, firstSeq, lastSeq: firstSeq - 1, bytes: (await stat(path)).size };
      this.#segments.push(seg);
    }
    await this.#writer.write(Buffer.concat(chunks, bytes));
    await this.#writer.datasync();
    seg.bytes += bytes;
    seg.lastSeq = lastSeq;
    this.#diskBytes += bytes;
    this.#wake?.();
  }

  /** Starts the send loop. */
  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    let backoff = this.#o.retryMinMs;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const events = await this.#readBatch();
      if (events.length === 0) {
        await this.#sleep(1000, true);
        continue;
      }
      try {
        const timeout = AbortSignal.any([signal, AbortSignal.timeout(this.#o.sendTimeoutMs)]);
        await this.#o.sink.send({ agentId: this.#o.agentId, dropped: this.#dropped, events }, timeout);
      } catch {
        if (signal.aborted) return;
        await this.#sleep(backoff, false);
        backoff = Math.min(backoff * 2, this.#o.retryMaxMs);
        continue;
      }
      backoff = this.#o.retryMinMs;
      this.#o.metrics?.spoolSent.inc(events.length);
      await this.#acknowledge((events.at(-1) as { seq: number }).seq);
    }
  }

  #sleep(ms: number, wakeOnFlush: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#stop.signal.removeEventListener('abort', done);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#stop.signal.addEventListener('abort', done);
      if (wakeOnFlush) this.#wake = done;
    });
  }

  async #readBatch(): Promise<{ seq: number; event: unknown }[]> {
    const out: { seq: number; event: unknown }[] = [];
    for (const seg of this.#segments) {
      if (seg.lastSeq <= this.#acked) continue;
      const { records } = decodeRecords(await readFile(seg.path));
      for (const r of records) {
        if (r.seq <= this.#acked || r.seq > seg.lastSeq) continue;
        out.push({ seq: r.seq, event: r.event });
        if (out.length >= this.#o.batchSize) return out;
      }
    }
    return out;
  }

  async #acknowledge(seq: number): Promise<void> {
    this.#acked = seq;
    const tmp = join(this.#o.dir, `${ACK_FILE}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify({ acked: seq, dropped: this.#dropped }));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.#o.dir, ACK_FILE));
    // Delete fully acknowledged segments, except the one still being written.
    while (this.#segments.length > 1 && (this.#segments[0] as Segment).lastSeq <= seq) {
      const seg = this.#segments.shift() as Segment;
      this.#diskBytes -= seg.bytes;
      await rm(seg.path, { force: true });
    }
    const only = this.#segments[0];
    if (this.#segments.length === 1 && only !== undefined && only.lastSeq <= seq && this.#buffer.length === 0 && only.bytes >= this.#o.segmentBytes) {
      await this.#flushChain;
      await this.#writer?.close();
      this.#writer = undefined;
      this.#segments.shift();
      this.#diskBytes -= only.bytes;
      await rm(only.path, { force: true });
    }
    this.#updateGauge();
  }

  #updateGauge(): void {
    this.#o.metrics?.spoolPending.set(this.#lastSeq - this.#acked);
  }

  /** Flushes, stops sending (an in-flight batch is abandoned and resent next start), closes files. */
  async close(): Promise<void> {
    await this.flush();
    this.#stop.abort();
    await this.#loop;
    await this.#writer?.close();
    this.#writer = undefined;
  }
}

