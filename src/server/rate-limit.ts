/**
 * What refused requests may cost the control plane (ADR 0077). Every refusal (bad or missing
 * credential, forbidden role, failed attestation, anything an unidentified caller is refused)
 * takes one token from its source's bucket and one from a bucket shared by every source; with
 * either empty the caller gets 429 ERR_SERVER_RATE_LIMITED and, instead of one audit row per
 * request, its refusals are counted and audited as one `auth.rate_limited` row per source per
 * window. A request that authenticates and is authorised never reaches this module, so an
 * attacker cannot lock a legitimate caller out, only make its own refusals cheaper.
 *
 * Memory is bounded: at most `maxSources` buckets (least recently refused first out, but only
 * once its bucket has refilled, which loses nothing: a full bucket is a fresh one), plus one
 * overflow bucket per surface that new sources share while every slot is busy (fail closed: a
 * spray of addresses cannot buy fresh bursts by pushing others out); at most `maxSources`
 * pending aggregate rows, beyond which counts fold into the `source/*` row of the window.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { RefusalRateLimitConfig } from './config.js';

export type Surface = 'admin' | 'agent';
export const SURFACES: readonly Surface[] = ['admin', 'agent'];

/** The Prometheus name these counts are for (the server has no /metrics yet, ADR 0077). */
export const RATE_LIMITED_METRIC = 'ward_server_requests_rate_limited_total';

export type Decision =
  | { readonly limited: false }
  | { readonly limited: true; readonly scope: 'source' | 'global'; readonly retryAfterSeconds: number };

/** One aggregate audit row: refusals of one source (or `*`: several) in one window that got 429. */
export interface SuppressedRow {
  readonly surface: Surface;
  /** The normalised address (`203.0.113.7`, `2001:db8:1:2::/64`), `unknown`, or `*` for folded sources. */
  readonly source: string;
  readonly count: number;
  /** Sources summed in this row: 1, or for `*` the rows folded into it (a lower bound once the pending table was full). */
  readonly sources: number;
  /** What the suppressed requests would have been refused with, by code. */
  readonly codes: Readonly<Record<string, number>>;
  /** Window start and end (ms since the epoch); first and last suppressed request. */
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly first: number;
  readonly last: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

interface Pending {
  readonly surface: Surface;
  readonly source: string;
  readonly window: number;
  count: number;
  sources: number;
  readonly codes: Map<string, number>;
  first: number;
  last: number;
}

const MAX_CODES_PER_ROW = 16;
const EVICTION_PROBES = 4;

function refill(b: Bucket, now: number, burst: number, perSecond: number): void {
  // A clock that went backwards refills nothing (and never drains).
  if (now > b.at) b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
  b.at = Math.max(b.at, now);
}

function retryAfter(b: Bucket, perSecond: number): number {
  return Math.max(1, Math.ceil((1 - b.tokens) / perSecond));
}

export class RefusalLimiter {
  readonly #c: RefusalRateLimitConfig;
  readonly #now: () => number;
  /** Source buckets by `surface source[#fingerprint]`; Map order is least recently refused first. */
  readonly #buckets = new Map<string, Bucket>();
  readonly #overflow = new Map<Surface, Bucket>();
  #global: Bucket | undefined;
  /** Aggregate rows not yet written, by `window surface source`. */
  readonly #pending = new Map<string, Pending>();
  readonly #limited: Record<Surface, number> = { admin: 0, agent: 0 };
  #overflowed = 0;

  constructor(config: RefusalRateLimitConfig, now: () => number) {
    this.#c = config;
    this.#now = now;
  }

  /**
   * Charges one refusal of `source` (see {@link sourceKey}) on `surface`. `bucketKey` may add a
   * credential fingerprint to the source (`key: ip+token`); rows always name the source only.
   */
  charge(surface: Surface, source: string, code: string, bucketKey: string = source): Decision {
    const now = this.#now();
    const c = this.#c;
    const global = (this.#global ??= { tokens: c.globalBurst, at: now });
    refill(global, now, c.globalBurst, c.globalRefillPerSecond);
    const own = this.#bucket(`${surface} ${bucketKey}`, surface, now);
    refill(own, now, c.burst, c.refillPerSecond);
    if (own.tokens >= 1 && global.tokens >= 1) {
      own.tokens -= 1;
      global.tokens -= 1;
      return { limited: false };
    }
    this.#limited[surface] += 1;
    this.#suppress(surface, source, code, now);
    return own.tokens < 1
      ? { limited: true, scope: 'source', retryAfterSeconds: retryAfter(own, c.refillPerSecond) }
      : { limited: true, scope: 'global', retryAfterSeconds: retryAfter(global, c.globalRefillPerSecond) };
  }

  #bucket(key: string, surface: Surface, now: number): Bucket {
    const found = this.#buckets.get(key);
    if (found !== undefined) {
      // Most recently refused goes last.
      this.#buckets.delete(key);
      this.#buckets.set(key, found);
      return found;
    }
    if (this.#buckets.size >= this.#c.maxSources) {
      // Only a bucket that has refilled may go: dropping it loses nothing.
      for (let i = 0; i < EVICTION_PROBES && this.#buckets.size >= this.#c.maxSources; i++) {
        const oldest = this.#buckets.entries().next().value as [string, Bucket];
        refill(oldest[1], now, this.#c.burst, this.#c.refillPerSecond);
        if (oldest[1].tokens < this.#c.burst) break;
        this.#buckets.delete(oldest[0]);
      }
      if (this.#buckets.size >= this.#c.maxSources) {
        // Every slot is busy: new sources share one bucket per surface until slots free up.
        this.#overflowed += 1;
        let shared = this.#overflow.get(surface);
        if (shared === undefined) this.#overflow.set(surface, (shared = { tokens: this.#c.burst, at: now }));
        return shared;
      }
    }
    const bucket = { tokens: this.#c.burst, at: now };
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #suppress(surface: Surface, source: string, code: string, now: number): void {
    const window = Math.floor(now / this.#c.windowMs) * this.#c.windowMs;
    let key = `${window} ${surface} ${source}`;
    let row = this.#pending.get(key);
    if (row === undefined && this.#pending.size >= this.#c.maxSources) {
      key = `${window} ${surface} *`;
      row = this.#pending.get(key);
      source = '*';
    }
    if (row === undefined) {
      row = { surface, source, window, count: 0, sources: 1, codes: new Map(), first: now, last: now };
      this.#pending.set(key, row);
    }
    row.count += 1;
    row.last = Math.max(row.last, now);
    const codeKey = row.codes.has(code) || row.codes.size < MAX_CODES_PER_ROW ? code : 'other';
    row.codes.set(codeKey, (row.codes.get(codeKey) ?? 0) + 1);
  }

  /**
   * Takes the aggregate rows of every window that has ended (all of them with `all`, at
   * shutdown): per window, the `maxAuditRowsPerWindow` sources with the most suppressed
   * requests get a row each, the rest are summed into one `*` row per surface. Also drops
   * buckets that have refilled (the periodic sweep).
   */
  takeRows(all = false): SuppressedRow[] {
    const now = this.#now();
    const c = this.#c;
    for (const [key, b] of this.#buckets) {
      refill(b, now, c.burst, c.refillPerSecond);
      if (b.tokens >= c.burst) this.#buckets.delete(key);
    }
    const byWindow = new Map<number, Pending[]>();
    for (const [key, row] of this.#pending) {
      if (!all && row.window + c.windowMs > now) continue;
      this.#pending.delete(key);
      const list = byWindow.get(row.window) ?? [];
      list.push(row);
      byWindow.set(row.window, list);
    }
    const out: SuppressedRow[] = [];
    for (const [window, rows] of [...byWindow].sort((a, b) => a[0] - b[0])) {
      rows.sort((a, b) => b.count - a.count || (a.source < b.source ? -1 : 1));
      const kept = rows.filter((r) => r.source !== '*').slice(0, c.maxAuditRowsPerWindow);
      const folded = new Map<Surface, Pending>();
      for (const r of rows) {
        if (kept.includes(r)) continue;
        const f = folded.get(r.surface);
        if (f === undefined) {
          folded.set(r.surface, { ...r, source: '*', codes: new Map(r.codes) });
          continue;
        }
        f.count += r.count;
        f.sources += r.sources;
        f.first = Math.min(f.first, r.first);
        f.last = Math.max(f.last, r.last);
        for (const [code, n] of r.codes) {
          const k = f.codes.has(code) || f.codes.size < MAX_CODES_PER_ROW ? code : 'other';
          f.codes.set(k, (f.codes.get(k) ?? 0) + n);
        }
      }
      for (const r of [...kept, ...folded.values()]) {
        out.push({
          surface: r.surface, source: r.source, count: r.count, sources: r.sources, codes: Object.fromEntries(r.codes),
          windowStart: window, windowEnd: window + c.windowMs, first: r.first, last: r.last,
        });
      }
    }
    return out;
  }

  /** Whether aggregate rows are waiting for their window to end. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Source buckets held (at most `maxSources`; the per-surface overflow buckets are extra). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Requests answered 429 per surface since start (`ward_server_requests_rate_limited_total`), and sources that had to share the overflow bucket. */
  stats(): { rateLimited: Readonly<Record<Surface, number>>; overflowed: number } {
    return { rateLimited: { ...this.#limited }, overflowed: this.#overflowed };
  }
}

/** The 8 groups of an IPv6 address, or undefined if it is not one. */
function hextets(address: string): number[] | undefined {
  let host: string;
  try {
    // WHATWG URL parsing canonicalises (embedded IPv4 becomes hex, `::` compressed once).
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head = '', tail] = host.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const parts = [...h, ...Array<string>(tail === undefined ? 0 : 8 - h.length - t.length).fill('0'), ...t].map((x) => parseInt(x, 16));
  return parts.length === 8 && parts.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? parts : undefined;
}

/**
 * The rate-limit source of a peer address: IPv4 as is; IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a
 * dual-stack listener reports IPv4 peers) as the IPv4 address; other IPv6 masked to
 * `ipv6PrefixLength` (`2001:db8:1:2::/64`), since one host usually holds a whole /64; anything
 * else `unknown` (one shared source, so it fails closed).
 */
export function sourceKey(remoteAddress: string | undefined, ipv6PrefixLength: number): string {
  if (remoteAddress === undefined) return 'unknown';
  const address = remoteAddress.replace(/%.*$/, '');
  if (isIP(address) === 4) return address;
  if (isIP(address) !== 6) return 'unknown';
  const h = hextets(address);
  if (h === undefined) return 'unknown';
  if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
    const [a, b] = [h[6] as number, h[7] as number];
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  const masked = h.map((x, i) => {
    const bits = Math.min(16, Math.max(0, ipv6PrefixLength - i * 16));
    return bits === 0 ? 0 : x & ((0xffff << (16 - bits)) & 0xffff);
  });
  const canonical = new URL(`http://[${masked.map((x) => x.toString(16)).join(':')}]/`).hostname.slice(1, -1);
  return ipv6PrefixLength >= 128 ? canonical : `${canonical}/${ipv6PrefixLength}`;
}

const FINGERPRINT_KEY = randomBytes(32);
const MAX_FINGERPRINTED = 4096;

/**
 * A keyed fingerprint of a presented credential (the Authorization header value): HMAC-SHA-256
 * under a key drawn at start and never written anywhere, so the fingerprint can neither be
 * reversed nor tested against guesses outside this process. Only ever held in memory.
 */
export function credentialFingerprint(value: string): string {
  return createHmac('sha256', FINGERPRINT_KEY).update(value.slice(0, MAX_FINGERPRINTED)).digest('base64url').slice(0, 22);
}
