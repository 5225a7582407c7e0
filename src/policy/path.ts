/**
 * Request path normalisation, done the way a careful proxy does before matching paths (the
 * Envoy/Istio `normalize_path` + `merge_slashes` + reject-escaped-slashes posture):
 *
 * 1. strip the query (`?`) and fragment (`#`);
 * 2. reject anything that is not origin-form (`/...`), control characters, invalid or
 *    encoded-separator escapes (`%2F`, `%5C`, `%00`) — they have no safe single meaning;
 * 3. decode percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`), upper-case the rest;
 * 4. turn `\` into `/`, optionally merge repeated slashes;
 * 5. remove dot segments (RFC 3986 §5.2.4), never climbing above the root.
 */

export interface NormalizeOptions {
  /** Merge `//` into `/` (default true, as Istio recommends). */
  readonly mergeSlashes?: boolean;
}

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

export const MAX_PATH_LENGTH = 8192;

const HEX = /^[0-9A-Fa-f]{2}$/;
/** Anything that is not already normal: escapes, backslashes, control characters, `//`, dot segments. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be caught
const NEEDS_WORK = /[%\\\x00-\x1f\x7f]|\/\/|\/\.\.?(?:\/|$)/;

function isUnreserved(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e;
}

/**
 * Normalises a request target's path. Never throws; an unsafe path gives `{ok: false, reason}`,
 * which evaluation turns into a deny.
 *
 * @example
 * normalizePath('/a/./b/../%63?x=1'); // { ok: true, path: '/a/c' }
 * normalizePath('/a%2Fb');            // { ok: false, reason: 'encoded path separator' }
 */
export function normalizePath(raw: string, options: NormalizeOptions = {}): NormalizedPath {
  if (typeof raw !== 'string') return { ok: false, reason: 'path is not a string' };
  if (raw.length > MAX_PATH_LENGTH) return { ok: false, reason: 'path too long' };
  let end = raw.length;
  const q = raw.indexOf('?');
  if (q >= 0) end = q;
  const h = raw.indexOf('#');
  if (h >= 0 && h < end) end = h;
  const target = end === raw.length ? raw : raw.slice(0, end);
  if (!target.startsWith('/') && !target.startsWith('\\')) return { ok: false, reason: 'path must start with /' };
  if (!NEEDS_WORK.test(target)) return { ok: true, path: target };
  let decoded = '';
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: 'control character in path' };
    if (c === 0x25) {
      const hex = target.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return { ok: false, reason: 'invalid percent-encoding' };
      const byte = parseInt(hex, 16);
      if (byte === 0x2f || byte === 0x5c) return { ok: false, reason: 'encoded path separator' };
      if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: 'encoded control character' };
      decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (c === 0x5c) {
      decoded += '/';
    } else {
      decoded += target[i];
    }
  }
  const merge = options.mergeSlashes ?? true;
  const input = merge ? decoded.replace(/\/{2,}/g, '/') : decoded;
  return { ok: true, path: removeDotSegments(input) };
}

/** RFC 3986 §5.2.4 on an absolute path, segment-wise. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is '' (leading slash).
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  }
  return `/${out.join('/')}`;
}
