/**
 * A tiny DER tree for tests: parse a certificate/CSR into nodes, edit them, encode again (with
 * lengths recomputed) and re-sign, so a test can craft exactly one encoding violation under a
 * valid signature. Test-only and deliberately lax (it must be able to build broken DER).
 */
import { sign, type KeyObject } from 'node:crypto';

export interface Node {
  tag: number;
  /** Constructed (or an OCTET/BIT STRING that encapsulates exactly one DER value). */
  children?: Node[];
  /** For BIT STRING encapsulation: the unused-bits byte kept in front of the child. */
  prefix?: Buffer;
  body?: Buffer;
  /** Encode the length in a non-minimal long form. */
  longLength?: boolean;
}

function readLen(buf: Buffer, pos: number): [number, number] {
  const first = buf[pos]!;
  if (first < 0x80) return [first, pos + 1];
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 1 + i]!;
  return [len, pos + 1 + n];
}

export function parseTree(buf: Buffer, start = 0, end = buf.length): Node[] {
  const out: Node[] = [];
  let pos = start;
  while (pos < end) {
    const tag = buf[pos]!;
    const [len, body] = readLen(buf, pos + 1);
    const content = buf.subarray(body, body + len);
    if (tag & 0x20) out.push({ tag, children: parseTree(buf, body, body + len) });
    else if (tag === 0x04 && isOneTlv(content)) out.push({ tag, children: parseTree(content) });
    else if (tag === 0x03 && content.length > 1 && content[0] === 0 && isOneTlv(content.subarray(1)) && content[1] === 0x30) {
      out.push({ tag, prefix: content.subarray(0, 1), children: parseTree(content.subarray(1)) });
    } else out.push({ tag, body: Buffer.from(content) });
    pos = body + len;
  }
  return out;
}

export function isOneTlv(b: Buffer): boolean {
  if (b.length < 2 || (b[0]! & 0x1f) === 0x1f) return false;
  if (b[1]! === 0x80 || (b[1]! & 0x7f) > 3 && b[1]! > 0x80) return false;
  const [len, body] = readLen(b, 1);
  return body + len === b.length;
}

function encodeLength(len: number, long: boolean): Buffer {
  if (len < 0x80 && !long) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let v = len; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (long) bytes.unshift(0); // a leading zero octet: never minimal
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function encode(n: Node): Buffer {
  const content = n.children ? Buffer.concat([n.prefix ?? Buffer.alloc(0), ...n.children.map(encode)]) : n.body!;
  return Buffer.concat([Buffer.from([n.tag]), encodeLength(content.length, n.longLength === true), content]);
}

export function allNodes(n: Node, out: Node[] = []): Node[] {
  out.push(n);
  for (const c of n.children ?? []) allNodes(c, out);
  return out;
}

export const clone = (n: Node): Node => ({ ...n, ...(n.children ? { children: n.children.map(clone) } : {}), ...(n.body ? { body: Buffer.from(n.body) } : {}) });


/** Re-encodes a signed structure (certificate or CSR) after `edit` changed its first child, re-signing it with `key`. */
export function resignWith(der: Buffer, key: KeyObject, edit: (tbs: Node) => void): Buffer {
  const root = parseTree(der)[0]!;
  const tbs = root.children![0]!;
  edit(tbs);
  const tbsDer = encode(tbs);
  return encode({ tag: 0x30, children: [tbs, root.children![1]!, { tag: 0x03, body: Buffer.concat([Buffer.from([0]), sign('sha256', tbsDer, key)]) }] });
}

/** The Extension node whose extnID has the given dotted OID's DER body (hex), in a TBSCertificate. */
export function extensionNode(tbs: Node, oidBodyHex: string): Node {
  const exts = tbs.children!.find((c) => c.tag === 0xa3)!.children![0]!.children!;
  const ext = exts.find((e) => e.children![0]!.body!.toString('hex') === oidBodyHex);
  if (!ext) throw new Error(`no extension ${oidBodyHex}`);
  return ext;
}

/** The value node inside an extension's OCTET STRING. */
export const extensionValue = (ext: Node): Node => ext.children![ext.children!.length - 1]!.children![0]!;

export const OIDHEX = Object.freeze({ basicConstraints: '551d13', keyUsage: '551d0f', subjectAltName: '551d11', authorityKeyIdentifier: '551d23', subjectKeyIdentifier: '551d0e', extKeyUsage: '551d25' });
