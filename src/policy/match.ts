/**
 * Value matchers used by compiled policies: Istio-style string patterns, path templates, globs,
 * ports and IP blocks. Each `compile*` validates its pattern once (throwing a `RangeError` with
 * a reason) and returns a predicate that does no parsing.
 */

export type StringMatcher = (value: string) => boolean;

const MAX_PATTERN = 1024;

/**
 * Istio string match: `*` (any, including empty), `prefix*`, `*suffix`, or an exact value.
 * With `ignoreCase`, pattern and value are compared lower-cased (hosts, header names).
 */
export function compileStringPattern(pattern: string, ignoreCase = false): StringMatcher {
  if (pattern.length > MAX_PATTERN) throw new RangeError(`pattern longer than ${MAX_PATTERN}`);
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  if (p === '*') return () => true;
  const lower = ignoreCase ? (v: string) => v.toLowerCase() : (v: string) => v;
  if (p.length > 1 && p.endsWith('*') && !p.slice(0, -1).includes('*')) {
    const prefix = p.slice(0, -1);
    return (v) => lower(v).startsWith(prefix);
  }
  if (p.length > 1 && p.startsWith('*') && !p.slice(1).includes('*')) {
    const suffix = p.slice(1);
    return (v) => lower(v).endsWith(suffix);
  }
  if (p.includes('*')) throw new RangeError(`'*' is allowed only alone, as a prefix or as a suffix: ${pattern}`);
  return ignoreCase ? (v) => v.length === p.length && v.toLowerCase() === p : (v) => v === p;
}

/** OR of several patterns; one pattern compiles to itself. */
export function anyOf(matchers: readonly StringMatcher[]): StringMatcher {
  if (matchers.length === 1) return matchers[0]!;
  return (v) => {
    for (let i = 0; i < matchers.length; i++) if (matchers[i]!(v)) return true;
    return false;
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Path pattern: an Istio string pattern, or a template whose segments may be `{*}` (exactly one
 * segment) or `{**}` (the rest, any number of segments; at most once). Case-sensitive.
 *
 * @example
 * compilePathPattern('/api/{*}/orders')('/api/v1/orders'); // true
 */
export function compilePathPattern(pattern: string): StringMatcher {
  if (!pattern.includes('{')) return compileStringPattern(pattern);
  if (pattern.length > MAX_PATTERN) throw new RangeError(`pattern longer than ${MAX_PATTERN}`);
  if (!pattern.startsWith('/')) throw new RangeError(`path template must start with '/': ${pattern}`);
  const segments = pattern.slice(1).split('/');
  let doubles = 0;
  const parts = segments.map((seg) => {
    if (seg === '{*}') return '[^/]+';
    if (seg === '{**}') {
      doubles++;
      return '.*';
    }
    if (seg.includes('{') || seg.includes('}') || seg.includes('*')) throw new RangeError(`template operators must be whole segments ({*} or {**}): ${pattern}`);
    return escapeRegex(seg);
  });
  if (doubles > 1) throw new RangeError(`at most one {**} per path template: ${pattern}`);
  const re = new RegExp(`^/${parts.join('/')}$`);
  return (v) => re.test(v);
}

/**
 * Executable/file path glob: `*` any characters but `/`, `**` any characters, `?` one character
 * but `/`. Must be absolute. At most 8 wildcards, to keep matching linear in practice.
 */
export function compileGlob(glob: string): StringMatcher {
  if (glob.length > MAX_PATTERN) throw new RangeError(`glob longer than ${MAX_PATTERN}`);
  if (!glob.startsWith('/')) throw new RangeError(`glob must be an absolute path: ${glob}`);
  if (!/[*?]/.test(glob)) return (v) => v === glob;
  let wildcards = 0;
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      wildcards++;
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') {
      wildcards++;
      re += '[^/]';
    } else re += escapeRegex(c);
  }
  if (wildcards > 8) throw new RangeError(`more than 8 wildcards in glob: ${glob}`);
  const compiled = new RegExp(`^${re}$`, 's');
  return (v) => v.length <= 4096 && compiled.test(v);
}

// ---- IP addresses -------------------------------------------------------------------------------

/**
 * Parses an IPv4 or IPv6 address into 16 bytes (IPv4 as `::ffff:a.b.c.d`); undefined when invalid.
 * Zone IDs and leading zeros in IPv4 octets are rejected (they are ambiguous across parsers).
 */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  if (!text.includes(':')) {
    const v4 = parseIpv4(text);
    if (!v4) return undefined;
    const out = new Uint8Array(16);
    out[10] = 0xff;
    out[11] = 0xff;
    out.set(v4, 12);
    return out;
  }
  return parseIpv6(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const double = text.indexOf('::');
  if (double >= 0 && text.indexOf('::', double + 1) >= 0) return undefined;
  const head = double >= 0 ? text.slice(0, double) : text;
  const tail = double >= 0 ? text.slice(double + 2) : '';
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (!h || !t) return undefined;
  if (head.includes('.') && double >= 0) return undefined;
  const total = h.length + t.length;
  if (double >= 0 ? total > 7 : total !== 8) return undefined;
  const all = [...h, ...new Array<number>(8 - total).fill(0), ...t];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

export interface Cidr {
  readonly bytes: Uint8Array;
  /** Prefix length over the 128-bit form (IPv4 prefixes are offset by 96). */
  readonly bits: number;
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (host route). Host bits must be zero. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addr);
  if (!bytes) throw new RangeError(`invalid IP address in ${JSON.stringify(text.slice(0, 60))}`);
  const v4 = !addr.includes(':');
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const n = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(n) || Number(n) > max) throw new RangeError(`invalid prefix length in ${JSON.stringify(text.slice(0, 60))}`);
    bits = Number(n);
  }
  const total = v4 ? bits + 96 : bits;
  for (let i = total; i < 128; i++) {
    if ((bytes[i >> 3]! >> (7 - (i & 7))) & 1) throw new RangeError(`host bits set in ${text} (did you mean the network address?)`);
  }
  return { bytes, bits: total };
}

export function cidrContains(cidr: Cidr, ip: Uint8Array): boolean {
  const full = cidr.bits >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip[i]) return false;
  const rem = cidr.bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (cidr.bytes[full]! & mask) === (ip[full]! & mask);
}

/** True when `inner` lies entirely within `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.bits >= outer.bits && cidrContains(outer, inner.bytes);
}

// ---- ports --------------------------------------------------------------------------------------

export function portInRanges(ranges: readonly { port: number; endPort: number; protocol: string }[], port: number, protocol: string): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (port >= r.port && port <= r.endPort && r.protocol === protocol) return true;
  }
  return false;
}
