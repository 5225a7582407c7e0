/** PEM <-> DER for certificates, CSRs and keys. Strict: base64 only between matching armour lines. */
import { PkiError, type PkiErrorCode } from './errors.js';

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** Every block of the given label (`CERTIFICATE`, `CERTIFICATE REQUEST`...) as DER, in order. */
export function pemBlocks(text: string, label: string, code: PkiErrorCode = 'ERR_CERT_MALFORMED'): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(BLOCK_RE)) {
    if (m[1] !== label) continue;
    const b64 = (m[2] as string).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new PkiError(code, `${label}: invalid base64 in PEM`);
    out.push(Buffer.from(b64, 'base64'));
  }
  return out;
}

/** Wraps DER in PEM armour with 64-column lines. */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

export const certToPem = (der: Uint8Array): string => toPem(der, 'CERTIFICATE');
