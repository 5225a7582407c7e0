/**
 * `ward server` configuration, parsed and validated once into a frozen object. Defaults live
 * here with their units; every later part reads only the {@link ServerConfig} it is handed.
 */
import { configError, deepFreeze, parseByteSize, parseDuration } from '../core/config.js';
import { tryParseSpiffeId } from '../core/spiffe-id.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  /** Directory holding the sealed CA state file, the SQLite database and the server's own TLS key. */
  readonly dataDir: string;
  /** Store URL (src/store/url.ts): default `sqlite:<dataDir>/ward.db`, or `postgres://…?schema=…`. */
  readonly storeUrl: string;
  readonly trustDomain: string;
  /** Admin REST API (tokens; client certificates when `adminTls`). Loopback by default. */
  readonly adminListen: ListenAddress;
  readonly adminTls: boolean;
  /** Agent API, always mutual TLS (attest needs only server-authenticated TLS). */
  readonly agentListen: ListenAddress;
  /** Extra DNS names / IPs put in the server certificate besides localhost and 127.0.0.1. */
  readonly serverNames: readonly string[];
  readonly svidTtlMs: number;
  readonly agentSvidTtlMs: number;
  readonly joinTokenTtlMs: number;
  readonly adminTokenTtlMs: number;
  readonly bodyLimitBytes: number;
  /** Scanner reports are larger than other bodies (a Trivy report of a big image is several MB). */
  readonly scanBodyLimitBytes: number;
  readonly watchHeartbeatMs: number;
  /** Open watch streams one agent may hold at once; one more is refused (429). */
  readonly maxWatchStreamsPerAgent: number;
  /** Bytes a watch stream may have queued for a reader that stopped reading before it is cut off. */
  readonly watchBufferLimitBytes: number;
  /**
   * Store maintenance, run as a singleton job (one replica per interval, see
   * services/maintenance.ts): how often, how long change-log rows are kept for resuming
   * watchers, and how long ingested events are kept.
   */
  readonly pruneIntervalMs: number;
  readonly changeLogRetentionMs: number;
  readonly eventRetentionMs: number;
  /** SPIFFE IDs whose client certificates (chaining to the Ward bundle) act as `admin`. */
  readonly adminSpiffeIds: readonly string[];
  /** The `attestors:` section (attestor name → options), validated by the platforms registry at start. */
  readonly attestors: Readonly<Record<string, unknown>>;
  /** Build provenance verification: `{keys: [{keyid?, publicKey: PEM}], threshold?, trustedBuilders?}`; absent = provenance imports refused. */
  readonly provenance: Readonly<Record<string, unknown>> | undefined;
  /** Where the master key that seals CA keys comes from: `file` (`<dataDir>/master.key`) or `env` (`WARD_MASTER_KEY`). */
  readonly masterKey: { readonly provider: 'file' | 'env'; readonly path: string };
  /** Token buckets on refused requests, per source and overall (ADR 0077, src/server/rate-limit.ts). */
  readonly refusalRateLimit: RefusalRateLimitConfig;
}

/**
 * What refused and unauthenticated requests may cost the server (ADR 0077). Only refusals take
 * tokens: a request that authenticates and is authorised never touches a bucket.
 */
export interface RefusalRateLimitConfig {
  /** Refusals one source may have in a burst before it gets 429 ERR_SERVER_RATE_LIMITED. */
  readonly burst: number;
  /** Tokens a source's bucket regains per second (fractions allowed: 0.2 = one per 5 s). */
  readonly refillPerSecond: number;
  /** The same bucket over every source together: bounds per-refusal audit rows server-wide. */
  readonly globalBurst: number;
  readonly globalRefillPerSecond: number;
  /** Suppressed refusals are audited as one `auth.rate_limited` row per source per window. */
  readonly windowMs: number;
  /** Sources tracked at once; when every slot is busy, new sources share one overflow bucket. */
  readonly maxSources: number;
  /** Aggregate rows written per window; sources beyond it are summed into one `source/*` row. */
  readonly maxAuditRowsPerWindow: number;
  /** `ip`, or `ip+token`: each presented Authorization value (as a keyed fingerprint) gets its own bucket per IP. */
  readonly key: 'ip' | 'ip+token';
  /** IPv6 sources are bucketed by this prefix (one host usually owns a whole /64). */
  readonly ipv6PrefixLength: number;
}

export const SERVER_DEFAULTS = Object.freeze({
  trustDomain: 'ward.local',
  adminHost: '127.0.0.1',
  adminPort: 7400,
  agentHost: '0.0.0.0',
  agentPort: 7401,
  svidTtl: '1h',
  agentSvidTtl: '1h',
  joinTokenTtl: '10m',
  adminTokenTtl: '90d',
  bodyLimit: '1MiB',
  scanBodyLimit: '32MiB',
  watchHeartbeat: '15s',
  maxWatchStreamsPerAgent: 4,
  watchBufferLimit: '8MiB',
  pruneInterval: '1m',
  changeLogRetention: '1h',
  eventRetention: '30d',
  refusalRateLimit: Object.freeze({
    burst: 20,
    refillPerSecond: 1,
    globalBurst: 500,
    globalRefillPerSecond: 50,
    window: '1m',
    maxSources: 10_000,
    maxAuditRowsPerWindow: 100,
    key: 'ip' as const,
    ipv6PrefixLength: 64,
  }),
});

/** Raw, unvalidated options as they come from flags or a config file. */
export interface RawServerOptions {
  dataDir?: unknown;
  store?: unknown;
  trustDomain?: unknown;
  adminListen?: unknown;
  adminTls?: unknown;
  agentListen?: unknown;
  serverNames?: unknown;
  svidTtl?: unknown;
  agentSvidTtl?: unknown;
  joinTokenTtl?: unknown;
  adminTokenTtl?: unknown;
  bodyLimit?: unknown;
  scanBodyLimit?: unknown;
  watchHeartbeat?: unknown;
  maxWatchStreamsPerAgent?: unknown;
  watchBufferLimit?: unknown;
  pruneInterval?: unknown;
  changeLogRetention?: unknown;
  eventRetention?: unknown;
  adminSpiffeIds?: unknown;
  attestors?: unknown;
  provenance?: unknown;
  masterKeyProvider?: unknown;
  masterKeyFile?: unknown;
  refusalRateLimit?: unknown;
}

const TRUST_DOMAIN_RE = /^[a-z0-9._-]{1,255}$/;

function str(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) throw configError(path, 'expected a non-empty string');
  return value;
}

function strList(value: unknown, path: string): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw configError(path, 'expected a list of strings');
  return value as string[];
}

/** Parses `host:port`, `:port` or `port`; port 0 asks the OS for a free one (tests). */
export function parseListen(value: unknown, path: string, defaultHost: string, defaultPort: number): ListenAddress {
  if (value === undefined) return { host: defaultHost, port: defaultPort };
  if (typeof value === 'number') return { host: defaultHost, port: port(value, path) };
  const text = str(value, path);
  let m = /^(\d{1,5})$/.exec(text);
  if (m) return { host: defaultHost, port: port(Number(m[1]), path) };
  m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text);
  if (!m) throw configError(path, `"${text}" is not host:port`);
  const host = m[1] ?? (m[2] === undefined || m[2] === '' ? defaultHost : m[2]);
  return { host, port: port(Number(m[3]), path) };
}

function port(n: number, path: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw configError(path, `port ${n} out of range`);
  return n;
}

function numberIn(value: unknown, path: string, min: number, max: number, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isSafeInteger(value))) {
    throw configError(path, `must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`);
  }
  return value;
}

const RATE_LIMIT_KEYS = ['burst', 'refillPerSecond', 'globalBurst', 'globalRefillPerSecond', 'window', 'maxSources', 'maxAuditRowsPerWindow', 'key', 'ipv6PrefixLength'] as const;

function refusalRateLimit(value: unknown): RefusalRateLimitConfig {
  const d = SERVER_DEFAULTS.refusalRateLimit;
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) throw configError('refusalRateLimit', `expected a map with ${RATE_LIMIT_KEYS.join(', ')}`);
  const raw = (value ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(raw)) if (!(RATE_LIMIT_KEYS as readonly string[]).includes(k)) throw configError(`refusalRateLimit.${k}`, 'unknown option');
  const p = (k: string): string => `refusalRateLimit.${k}`;
  const key = raw.key ?? d.key;
  if (key !== 'ip' && key !== 'ip+token') throw configError(p('key'), 'expected ip or ip+token');
  const burst = numberIn(raw.burst ?? d.burst, p('burst'), 1, 100_000, true);
  const globalBurst = numberIn(raw.globalBurst ?? d.globalBurst, p('globalBurst'), 1, 1_000_000, true);
  if (globalBurst < burst) throw configError(p('globalBurst'), 'must be at least burst');
  return {
    burst,
    refillPerSecond: numberIn(raw.refillPerSecond ?? d.refillPerSecond, p('refillPerSecond'), 0.001, 100_000, false),
    globalBurst,
    globalRefillPerSecond: numberIn(raw.globalRefillPerSecond ?? d.globalRefillPerSecond, p('globalRefillPerSecond'), 0.001, 1_000_000, false),
    windowMs: duration(raw.window, d.window, p('window'), 1000),
    maxSources: numberIn(raw.maxSources ?? d.maxSources, p('maxSources'), 16, 1_000_000, true),
    maxAuditRowsPerWindow: numberIn(raw.maxAuditRowsPerWindow ?? d.maxAuditRowsPerWindow, p('maxAuditRowsPerWindow'), 1, 10_000, true),
    key,
    ipv6PrefixLength: numberIn(raw.ipv6PrefixLength ?? d.ipv6PrefixLength, p('ipv6PrefixLength'), 32, 128, true),
  };
}

function duration(value: unknown, fallback: string, path: string, minMs: number): number {
  const ms = parseDuration(value === undefined ? fallback : (value as string | number), path);
  if (ms < minMs) throw configError(path, `must be at least ${minMs}ms`);
  return ms;
}

/**
 * Validates raw options into a frozen {@link ServerConfig}.
 *
 * @example
 * const cfg = parseServerConfig({ dataDir: '/var/lib/ward', store: 'postgres://ward@db/ward' });
 */
export function parseServerConfig(raw: RawServerOptions): ServerConfig {
  const dataDir = str(raw.dataDir, 'dataDir');
  const storeUrl = raw.store === undefined ? `sqlite:${dataDir.replace(/\/+$/, '')}/ward.db` : str(raw.store, 'store');
  if (!/^(sqlite:|postgres(ql)?:\/\/|:memory:$)/.test(storeUrl)) throw configError('store', 'expected sqlite:<path>, :memory: or postgres://…');
  const trustDomain = raw.trustDomain === undefined ? SERVER_DEFAULTS.trustDomain : str(raw.trustDomain, 'trustDomain');
  if (!TRUST_DOMAIN_RE.test(trustDomain)) throw configError('trustDomain', 'lower-case letters, digits, dots, dashes and underscores only');
  const adminSpiffeIds = strList(raw.adminSpiffeIds, 'adminSpiffeIds').map((text, i) => {
    const id = tryParseSpiffeId(text);
    if (id === undefined) throw configError(`adminSpiffeIds[${i}]`, 'expected a SPIFFE ID');
    if (id.trustDomain !== trustDomain) throw configError(`adminSpiffeIds[${i}]`, `must be in trust domain ${trustDomain}`);
    // /ward/ IDs are the server's and the agents': an agent's own SVID must never be an admin credential.
    if (id.path.startsWith('/ward/')) throw configError(`adminSpiffeIds[${i}]`, '/ward/ paths are reserved for the server and agents');
    return id.toString();
  });
  const bodyLimitBytes = parseByteSize((raw.bodyLimit ?? SERVER_DEFAULTS.bodyLimit) as string | number, 'bodyLimit');
  if (bodyLimitBytes < 1024 || bodyLimitBytes > 64 * 1024 * 1024) throw configError('bodyLimit', 'must be between 1KiB and 64MiB');
  const scanBodyLimitBytes = parseByteSize((raw.scanBodyLimit ?? SERVER_DEFAULTS.scanBodyLimit) as string | number, 'scanBodyLimit');
  if (scanBodyLimitBytes < bodyLimitBytes || scanBodyLimitBytes > 256 * 1024 * 1024) throw configError('scanBodyLimit', 'must be at least bodyLimit and at most 256MiB');
  const maxWatchStreamsPerAgent = raw.maxWatchStreamsPerAgent ?? SERVER_DEFAULTS.maxWatchStreamsPerAgent;
  if (typeof maxWatchStreamsPerAgent !== 'number' || !Number.isSafeInteger(maxWatchStreamsPerAgent) || maxWatchStreamsPerAgent < 1 || maxWatchStreamsPerAgent > 64) throw configError('maxWatchStreamsPerAgent', 'must be an integer between 1 and 64');
  const watchBufferLimitBytes = parseByteSize((raw.watchBufferLimit ?? SERVER_DEFAULTS.watchBufferLimit) as string | number, 'watchBufferLimit');
  if (watchBufferLimitBytes < 64 * 1024 || watchBufferLimitBytes > 256 * 1024 * 1024) throw configError('watchBufferLimit', 'must be between 64KiB and 256MiB');
  if (raw.adminTls !== undefined && typeof raw.adminTls !== 'boolean') throw configError('adminTls', 'expected a boolean');
  const attestors = raw.attestors === undefined ? { join_token: {} } : raw.attestors;
  if (attestors === null || typeof attestors !== 'object' || Array.isArray(attestors)) throw configError('attestors', 'expected a map of attestor name to options');
  if (raw.provenance !== undefined && (raw.provenance === null || typeof raw.provenance !== 'object' || Array.isArray(raw.provenance))) throw configError('provenance', 'expected {keys: [{keyid, publicKey}], trustedBuilders}');
  const provider = raw.masterKeyProvider === undefined ? 'file' : raw.masterKeyProvider;
  if (provider !== 'file' && provider !== 'env') throw configError('masterKeyProvider', 'expected file or env');
  const rateLimit = refusalRateLimit(raw.refusalRateLimit);
  if (rateLimit.windowMs > 3_600_000) throw configError('refusalRateLimit.window', 'must be at most 1h');
  const masterKeyPath = raw.masterKeyFile === undefined ? `${dataDir.replace(/\/+$/, '')}/master.key` : str(raw.masterKeyFile, 'masterKeyFile');
  return deepFreeze({
    dataDir,
    storeUrl,
    trustDomain,
    adminListen: parseListen(raw.adminListen, 'adminListen', SERVER_DEFAULTS.adminHost, SERVER_DEFAULTS.adminPort),
    adminTls: raw.adminTls === true,
    agentListen: parseListen(raw.agentListen, 'agentListen', SERVER_DEFAULTS.agentHost, SERVER_DEFAULTS.agentPort),
    serverNames: strList(raw.serverNames, 'serverNames'),
    svidTtlMs: duration(raw.svidTtl, SERVER_DEFAULTS.svidTtl, 'svidTtl', 60_000),
    agentSvidTtlMs: duration(raw.agentSvidTtl, SERVER_DEFAULTS.agentSvidTtl, 'agentSvidTtl', 60_000),
    joinTokenTtlMs: duration(raw.joinTokenTtl, SERVER_DEFAULTS.joinTokenTtl, 'joinTokenTtl', 1000),
    adminTokenTtlMs: duration(raw.adminTokenTtl, SERVER_DEFAULTS.adminTokenTtl, 'adminTokenTtl', 60_000),
    bodyLimitBytes,
    scanBodyLimitBytes,
    watchHeartbeatMs: duration(raw.watchHeartbeat, SERVER_DEFAULTS.watchHeartbeat, 'watchHeartbeat', 100),
    maxWatchStreamsPerAgent,
    watchBufferLimitBytes,
    pruneIntervalMs: duration(raw.pruneInterval, SERVER_DEFAULTS.pruneInterval, 'pruneInterval', 1000),
    changeLogRetentionMs: duration(raw.changeLogRetention, SERVER_DEFAULTS.changeLogRetention, 'changeLogRetention', 60_000),
    eventRetentionMs: duration(raw.eventRetention, SERVER_DEFAULTS.eventRetention, 'eventRetention', 3_600_000),
    adminSpiffeIds,
    attestors: structuredClone(attestors) as Record<string, unknown>,
    provenance: raw.provenance === undefined ? undefined : (structuredClone(raw.provenance) as Record<string, unknown>),
    masterKey: { provider, path: masterKeyPath },
    refusalRateLimit: rateLimit,
  });
}
