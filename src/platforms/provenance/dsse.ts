/**
 * DSSE (Dead Simple Signing Envelope) v1: the envelope shape and the pre-authentication
 * encoding the signature covers, per github.com/secure-systems-lab/dsse/blob/master/protocol.md:
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 * where LEN is the byte length in ASCII decimal. Signing the PAE (not the raw payload) binds
 * the payload type, so a signature cannot be replayed over another type.
 */
import { Buffer } from 'node:buffer';
import { ProvenanceError } from './errors.js';

export interface DsseSignature {
  readonly keyid: string;
  readonly sig: Uint8Array;
}

export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly DsseSignature[];
}

export const MAX_SIGNATURES = 16;

/** The bytes a DSSE signature is computed over. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.byteLength} `, 'ascii'), type,
    Buffer.from(` ${payload.byteLength} `, 'ascii'), payload,
  ]);
}

function envelopeError(path: string, message: string): ProvenanceError {
  return new ProvenanceError('ERR_PROVENANCE_ENVELOPE', `${path}: ${message}`, { details: { path } });
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64 (standard or URL-safe, as DSSE allows); Buffer.from alone skips bad characters. */
export function decodeBase64(text: unknown, path: string): Buffer {
  if (typeof text !== 'string') throw envelopeError(path, 'expected a base64 string');
  if (B64.test(text)) return Buffer.from(text, 'base64');
  if (B64URL.test(text) && text.length % 4 !== 1) return Buffer.from(text, 'base64url');
  throw envelopeError(path, 'not valid base64');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a DSSE envelope from parsed JSON. A Sigstore bundle (`{ dsseEnvelope: … }`) is
 * unwrapped; the signature-bearing fields are checked strictly.
 */
export function readEnvelope(doc: unknown): DsseEnvelope {
  const env = isObject(doc) && isObject(doc['dsseEnvelope']) ? doc['dsseEnvelope'] : doc;
  if (!isObject(env)) throw envelopeError('$', 'expected a DSSE envelope object');
  const payloadType = env['payloadType'];
  if (typeof payloadType !== 'string' || payloadType.length === 0 || payloadType.length > 256) throw envelopeError('$.payloadType', 'expected a non-empty string');
  const payload = decodeBase64(env['payload'], '$.payload');
  const sigs = env['signatures'];
  if (!Array.isArray(sigs) || sigs.length === 0) throw envelopeError('$.signatures', 'expected at least one signature');
  if (sigs.length > MAX_SIGNATURES) throw envelopeError('$.signatures', `more than ${MAX_SIGNATURES} signatures`);
  const signatures = sigs.map((s, i): DsseSignature => {
    if (!isObject(s)) throw envelopeError(`$.signatures[${i}]`, 'expected an object');
    const keyid = s['keyid'] ?? '';
    if (typeof keyid !== 'string' || keyid.length > 512) throw envelopeError(`$.signatures[${i}].keyid`, 'expected a string');
    const sig = decodeBase64(s['sig'], `$.signatures[${i}].sig`);
    if (sig.byteLength === 0 || sig.byteLength > 2048) throw envelopeError(`$.signatures[${i}].sig`, 'empty or oversized signature');
    return { keyid, sig };
  });
  return { payloadType, payload, signatures };
}
