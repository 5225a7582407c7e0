/**
 * Request-target normalisation for policy matching (Envoy `normalize_path` + `merge_slashes`
 * semantics). The agent forwards the normalised path, so the app serves exactly what policy
 * saw. Private until `src/policy` exports `normalizePath`; swap then.
 *
 * Rejected outright (never guessed): encoded slashes and backslashes (`%2F`, `%5C`), raw
 * backslashes, NUL and control characters, invalid percent-encoding, `..` above the root,
 * anything not starting with `/`.
 */
export type NormalizedTarget =
  | { readonly ok: true; readonly path: string; readonly query: string }
  | { readonly ok: false };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** True when `s` holds a control character, space or DEL (or, for paths, `\\` or `#`). */
function hasForbidden(s: string, inPath: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || (inPath && (c === 0x5c || c === 0x23))) return true;
  }
  return false;
}

/** Characters that may need work: `%`, `.`, `/` after `/`, `\\`, `#`, space, controls. */
function isPlain(target: string, end: number): boolean {
  let prev = 0;
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c === 0x25 || c === 0x2e || c === 0x5c || c === 0x23 || c >= 0x7f || (c === 0x2f && prev === 0x2f)) return false;
    prev = c;
  }
  return true;
}

export function normalizeRequestTarget(target: string): NormalizedTarget {
  if (target.length === 0 || target.charCodeAt(0) !== 0x2f /* / */) return { ok: false };
  // Fast path: a path with nothing to decode, merge or resolve is already normal.
  const qi = target.indexOf('?');
  const pathEnd = qi === -1 ? target.length : qi;
  if (isPlain(target, pathEnd) && (qi === -1 || !hasForbidden(target.slice(qi), false))) {
    return qi === -1 ? { ok: true, path: target, query: '' } : { ok: true, path: target.slice(0, qi), query: target.slice(qi) };
  }
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  if (hasForbidden(rawPath, true)) return { ok: false };
  if (hasForbidden(query, false)) return { ok: false };
  // Decode only unreserved characters (RFC 3986 §6.2.2.2); normalise other escapes to upper case.
  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath[i] as string;
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false };
    const code = parseInt(hex, 16);
    if (code === 0x2f || code === 0x5c || code < 0x20 || code === 0x7f) return { ok: false };
    const ch = String.fromCharCode(code);
    decoded += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i] as string;
    const last = i === segments.length - 1;
    if (seg === '' && !last) continue; // merge slashes
    if (seg === '.') {
      if (last) out.push('');
      continue;
    }
    if (seg === '..') {
      if (out.length === 0) return { ok: false };
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(seg);
  }
  return { ok: true, path: `/${out.join('/')}`, query };
}
