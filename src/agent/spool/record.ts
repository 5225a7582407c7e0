/**
 * The spool's on-disk record: `u32 length | u32 crc32(payload) | payload` (big-endian), the
 * payload being UTF-8 JSON `{"s":seq,"e":event}`. A reader stops at the first record that is
 * short or fails its checksum: that is a torn write from a crash, and the tail is discarded.
 */
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';

// node:zlib only once a record is written or read: an agent without an event spool never loads it (ADR 0073).
let zlibCrc32: ((data: Uint8Array) => number) | undefined;
const crc32 = (data: Uint8Array): number => (zlibCrc32 ??= (createRequire(import.meta.url)('node:zlib') as typeof Zlib).crc32)(data);

export const RECORD_HEADER_BYTES = 8;
/** A record larger than this is corrupt by definition (events are small). */
export const MAX_RECORD_BYTES = 1 << 20;

export interface SpoolRecord {
  readonly seq: number;
  readonly event: unknown;
}

export function encodeRecord(record: SpoolRecord): Buffer {
  const payload = Buffer.from(JSON.stringify({ s: record.seq, e: record.event }), 'utf8');
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  payload.copy(out, RECORD_HEADER_BYTES);
  return out;
}

export interface DecodeResult {
  readonly records: SpoolRecord[];
  /** Bytes of valid records from the start; anything after is a torn or corrupt tail. */
  readonly validBytes: number;
  readonly corrupt: boolean;
}

/** Decodes records until the end or the first bad one. Never throws on any input. */
export function decodeRecords(data: Buffer): DecodeResult {
  const records: SpoolRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (data.length - offset < RECORD_HEADER_BYTES) return { records, validBytes: offset, corrupt: true };
    const length = data.readUInt32BE(offset);
    const sum = data.readUInt32BE(offset + 4);
    if (length > MAX_RECORD_BYTES || data.length - offset - RECORD_HEADER_BYTES < length) return { records, validBytes: offset, corrupt: true };
    const payload = data.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
    if (crc32(payload) !== sum) return { records, validBytes: offset, corrupt: true };
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return { records, validBytes: offset, corrupt: true };
    }
    const p = parsed as { s?: unknown; e?: unknown } | null;
    if (p === null || typeof p !== 'object' || !Number.isSafeInteger(p.s) || (p.s as number) < 1 || !('e' in p)) return { records, validBytes: offset, corrupt: true };
    const last = records.at(-1);
    if (last !== undefined && (p.s as number) <= last.seq) return { records, validBytes: offset, corrupt: true };
    records.push({ seq: p.s as number, event: p.e });
    offset += RECORD_HEADER_BYTES + length;
  }
  return { records, validBytes: offset, corrupt: false };
}
