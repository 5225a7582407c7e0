// A reader for the classic pcap files tcpdump writes (Ethernet, IPv4, TCP), and a check that a
// TCP stream is nothing but TLS records from its first byte to its last.

export interface TcpSegment {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly seq: number;
  readonly payload: Buffer;
}

/** Parses a pcap file (microsecond or nanosecond, either byte order); skips non-IPv4/TCP frames. */
export function readPcap(buf: Buffer): TcpSegment[] {
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  // Ethernet (1), Linux cooked capture v1 (113) and v2 (276, `tcpdump -i any`): header size and
  // where the EtherType sits.
  const layout: Record<number, [number, number]> = { 1: [14, 12], 113: [16, 14], 276: [20, 0] };
  const l = layout[linkType];
  if (l === undefined) throw new Error(`unsupported link type ${linkType}`);
  const [header, etherAt] = l;
  const out: TcpSegment[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8);
    const frame = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (frame.length < header + 20 || frame.readUInt16BE(etherAt) !== 0x0800) continue;
    const ip = frame.subarray(header);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 6) continue;
    const total = ip.readUInt16BE(2);
    const tcp = ip.subarray(ihl, total);
    if (tcp.length < 20) continue;
    const doff = (tcp[12]! >> 4) * 4;
    out.push({
      src: `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`,
      dst: `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`,
      sport: tcp.readUInt16BE(0),
      dport: tcp.readUInt16BE(2),
      seq: tcp.readUInt32BE(4),
      payload: Buffer.from(tcp.subarray(doff)),
    });
  }
  return out;
}

/** Groups payload bytes per direction of each connection, in sequence order, without retransmitted copies. */
export function streams(segments: readonly TcpSegment[]): Map<string, Buffer> {
  const byFlow = new Map<string, Map<number, Buffer>>();
  for (const s of segments) {
    if (s.payload.length === 0) continue;
    const key = `${s.src}:${s.sport}>${s.dst}:${s.dport}`;
    let m = byFlow.get(key);
    if (!m) byFlow.set(key, (m = new Map()));
    if (!m.has(s.seq)) m.set(s.seq, s.payload);
  }
  const out = new Map<string, Buffer>();
  for (const [key, m] of byFlow) {
    const seqs = [...m.keys()];
    const base = Math.min(...seqs);
    // Sequence numbers wrap at 2^32; order by distance from the first one seen.
    const ordered = seqs.map((q) => ({ q, d: (q - base + 2 ** 32) % 2 ** 32 })).sort((a, b) => a.d - b.d);
    out.set(key, Buffer.concat(ordered.map((o) => m.get(o.q)!)));
  }
  return out;
}

/** True when the bytes are a whole number of TLS records (the last one may be cut by the capture's end). */
export function isTlsStream(bytes: Buffer): boolean {
  let off = 0;
  let records = 0;
  while (off + 5 <= bytes.length) {
    const type = bytes[off]!;
    const major = bytes[off + 1]!;
    const minor = bytes[off + 2]!;
    const len = bytes.readUInt16BE(off + 3);
    if (type < 20 || type > 23 || major !== 3 || minor > 4 || len > 16384 + 2048) return false;
    off += 5 + len;
    records += 1;
  }
  return records > 0 && (off >= bytes.length || bytes.length - off < 5);
}
