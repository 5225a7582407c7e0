/**
 * Agent configuration: parsed once at the edge (file and/or flags) into a frozen, typed object.
 * Defaults live here with their units. Reference: docs/reference/agent.md.
 */
import { isAbsolute, resolve } from 'node:path';
import { deepFreeze, parseByteSize, parseDuration } from '../core/config.js';
import { AgentError } from './errors.js';
import type { InboundPortConfig } from './proxy/inbound.js';
import { DEFAULT_LIMITS, type ProxyLimits } from './proxy/limits.js';
import type { UpstreamService } from './proxy/upstream-tls.js';

export interface OutboundConfig extends UpstreamService {
  readonly listenHost: string;
  readonly listenPort: number;
}

/**
 * Which mode the config is for. `static`: identity files and a policy directory are required.
 * `control` (`--server`): identity and policy come from the server, so `identity` and
 * `policyDir` must be absent (setting them would be silently ignored, so it is an error).
 */
export type AgentMode = 'static' | 'control';

/** Everything both modes share: the proxy, admin, events, limits, workers, logging. */
export interface ProxyAgentConfig {
  readonly inbound: readonly InboundPortConfig[];
  readonly outbound: readonly OutboundConfig[];
  readonly httpProxy: { readonly host: string; readonly port: number } | undefined;
  readonly jwt: { readonly issuer: string; readonly audiences: readonly string[]; readonly jwksFile: string | undefined; readonly jwksUri: string | undefined } | undefined;
  readonly admin: { readonly host: string; readonly port: number } | undefined;
  readonly spool: { readonly dir: string; readonly sinkUrl: string | undefined; readonly maxBytes: number; readonly agentId: string } | undefined;
  readonly limits: ProxyLimits;
  /** How often the static files are checked for changes. */
  readonly reloadIntervalMs: number;
  /** Worker processes sharing the listening ports (node:cluster); 1 = in-process. */
  readonly workers: number;
  /**
   * Where L4 bytes and TLS run (ADR 0049): `native` (the relay thread; refuses to start without
   * it), `node` (Node streams), `auto` (native when the addon loads, else node).
   */
  readonly dataPlane: 'auto' | 'native' | 'node';
  /**
   * The Node/V8 runtime the agent process runs on (ADR 0073): `lean` (default) restarts the
   * process once, in place, with a small V8 young generation, no V8 background threads and one
   * glibc malloc arena; `default` keeps Node's defaults.
   */
  readonly runtime: 'lean' | 'default';
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Control mode: the shared part plus agent.yaml's `control` section (the rest of control mode is flags). */
export interface ControlAgentConfig extends ProxyAgentConfig {
  readonly control: {
    /** `control.watchIdleTimeout`; `--watch-idle-timeout` overrides it; undefined: the controller's default (45 s). */
    readonly watchIdleTimeoutMs: number | undefined;
  };
}

/** Static mode: the shared part plus identity files and the policy directory. */
export interface AgentConfig extends ProxyAgentConfig {
  readonly svidFile: string;
  readonly keyFile: string;
  readonly bundleFile: string;
  /** Optional file of revoked certificate serial numbers (hex, one per line). */
  readonly revocationsFile: string | undefined;
  readonly policyDir: string;
}

export const DEFAULT_RELOAD_INTERVAL_MS = 1000;
export const DEFAULT_SPOOL_MAX_BYTES = 64 * 1024 * 1024;
/** Bounds of the watch idle timeout (`control.watchIdleTimeout`, `--watch-idle-timeout`). */
export const WATCH_IDLE_TIMEOUT_BOUNDS_MS = Object.freeze({ min: 1000, max: 3_600_000 });

function bad(path: string, message: string): AgentError {
  return new AgentError('ERR_AGENT_CONFIG', `${path}: ${message}`, { details: { path } });
}

type Raw = Record<string, unknown>;

function obj(v: unknown, path: string): Raw {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(path, 'expected a mapping');
  return v as Raw;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0) throw bad(path, 'expected a non-empty string');
  return v;
}

function optStr(v: unknown, path: string): string | undefined {
  return v === undefined ? undefined : str(v, path);
}

function port(v: unknown, path: string, allowZero = false): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw bad(path, 'expected a port number');
  return n;
}

/** `host:port`, `:port` or `port`. */
export function parseHostPort(v: unknown, path: string, defaultHost: string): { host: string; port: number } {
  if (typeof v === 'number') return { host: defaultHost, port: port(v, path, true) };
  const s = str(v, path);
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (m) return { host: m[1] ?? (m[2] === '' ? defaultHost : (m[2] as string)), port: port(m[3], path, true) };
  return { host: defaultHost, port: port(s, path, true) };
}

function file(v: unknown, path: string, baseDir: string): string {
  const s = str(v, path);
  return isAbsolute(s) ? s : resolve(baseDir, s);
}

const TOP_KEYS = new Set(['identity', 'policyDir', 'inbound', 'outbound', 'httpProxy', 'jwt', 'admin', 'events', 'limits', 'reloadInterval', 'workers', 'dataPlane', 'runtime', 'logLevel', 'control']);

/** An empty `identity: {}` (what flag merging produces when no identity flag is given) counts as absent. */
function isAbsent(v: unknown): boolean {
  return v === undefined || (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);
}

/**
 * Validates a raw config object (from YAML and/or flags); relative paths resolve from `baseDir`.
 * In `control` mode the result has no identity files or policy directory (see {@link AgentMode}).
 */
export function parseAgentConfig(raw: unknown, baseDir: string, mode?: 'static'): AgentConfig;
export function parseAgentConfig(raw: unknown, baseDir: string, mode: 'control'): ControlAgentConfig;
export function parseAgentConfig(raw: unknown, baseDir: string, mode: AgentMode = 'static'): AgentConfig | ControlAgentConfig {
  const r = obj(raw ?? {}, 'config');
  for (const k of Object.keys(r)) if (!TOP_KEYS.has(k)) throw bad(k, 'unknown field');
  const shared = parseShared(r, baseDir);
  if (mode === 'control') {
    if (!isAbsent(r.identity)) throw bad('identity', 'not used in control-plane mode (the SVID comes from the server); remove it');
    if (r.policyDir !== undefined) throw bad('policyDir', 'not used in control-plane mode (policy comes from the server); remove it');
    return deepFreeze({ ...shared, control: parseControlSection(r.control) });
  }
  if (!isAbsent(r.control)) throw bad('control', 'used in control-plane mode only (--server); remove it');
  const id = obj(r.identity, 'identity');
  return deepFreeze({
    ...shared,
    svidFile: file(id.svid, 'identity.svid', baseDir),
    keyFile: file(id.key, 'identity.key', baseDir),
    bundleFile: file(id.bundle, 'identity.bundle', baseDir),
    revocationsFile: id.revocations === undefined ? undefined : file(id.revocations, 'identity.revocations', baseDir),
    policyDir: file(r.policyDir, 'policyDir', baseDir),
  });
}

function parseShared(r: Raw, baseDir: string): ProxyAgentConfig {
  const inboundRaw = r.inbound ?? [];
  if (!Array.isArray(inboundRaw)) throw bad('inbound', 'expected a list');
  const inbound = inboundRaw.map((x: unknown, i: number): InboundPortConfig => {
    const p = `inbound[${i}]`;
    const e = obj(x, p);
    const mode = e.mode ?? 'STRICT';
    if (mode !== 'STRICT' && mode !== 'PERMISSIVE') throw bad(`${p}.mode`, 'expected STRICT or PERMISSIVE');
    const protocol = e.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'http') throw bad(`${p}.protocol`, 'expected tcp or http');
    const appProtocol = e.appProtocol ?? 'http1';
    if (appProtocol !== 'http1' && appProtocol !== 'h2c') throw bad(`${p}.appProtocol`, 'expected http1 or h2c');
    return {
      port: port(e.port, `${p}.port`, true),
      host: e.host === undefined ? '0.0.0.0' : str(e.host, `${p}.host`),
      mode,
      protocol,
      appHost: e.appHost === undefined ? '127.0.0.1' : str(e.appHost, `${p}.appHost`),
      appPort: port(e.appPort, `${p}.appPort`),
      appProtocol,
    };
  });
  const outboundRaw = r.outbound ?? [];
  if (!Array.isArray(outboundRaw)) throw bad('outbound', 'expected a list');
  const outbound = outboundRaw.map((x: unknown, i: number): OutboundConfig => {
    const p = `outbound[${i}]`;
    const e = obj(x, p);
    const listen = parseHostPort(e.listen, `${p}.listen`, '127.0.0.1');
    const address = parseHostPort(e.address, `${p}.address`, '127.0.0.1');
    const ids = e.allowedIds;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((s) => typeof s === 'string' && s.startsWith('spiffe://'))) throw bad(`${p}.allowedIds`, 'expected a non-empty list of SPIFFE IDs');
    const name = str(e.name, `${p}.name`);
    if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(name)) throw bad(`${p}.name`, 'expected a DNS-style service name');
    return { name, host: address.host, port: address.port, allowedIds: ids as string[], listenHost: listen.host, listenPort: listen.port };
  });
  let httpProxy: AgentConfig['httpProxy'];
  if (r.httpProxy !== undefined) httpProxy = parseHostPort(obj(r.httpProxy, 'httpProxy').listen, 'httpProxy.listen', '127.0.0.1');
  let jwt: AgentConfig['jwt'];
  if (r.jwt !== undefined) {
    const j = obj(r.jwt, 'jwt');
    const audiences = typeof j.audiences === 'string' ? [j.audiences] : j.audiences;
    if (!Array.isArray(audiences) || audiences.length === 0 || !audiences.every((a) => typeof a === 'string')) throw bad('jwt.audiences', 'expected a non-empty list');
    const jwksFile = j.jwksFile === undefined ? undefined : file(j.jwksFile, 'jwt.jwksFile', baseDir);
    const jwksUri = optStr(j.jwksUri, 'jwt.jwksUri');
    if ((jwksFile === undefined) === (jwksUri === undefined)) throw bad('jwt', 'set exactly one of jwksFile and jwksUri');
    if (jwksUri !== undefined && !/^https?:\/\//.test(jwksUri)) throw bad('jwt.jwksUri', 'expected an http(s) URL');
    jwt = { issuer: str(j.issuer, 'jwt.issuer'), audiences: audiences as string[], jwksFile, jwksUri };
  }
  let admin: AgentConfig['admin'] = { host: '127.0.0.1', port: 15000 };
  if (r.admin === false || r.admin === 'off') admin = undefined;
  else if (r.admin !== undefined) {
    admin = parseHostPort(obj(r.admin, 'admin').listen, 'admin.listen', '127.0.0.1');
    if (!['127.0.0.1', '::1', 'localhost'].includes(admin.host)) throw bad('admin.listen', 'the admin port binds to loopback only');
  }
  let spool: AgentConfig['spool'];
  if (r.events !== undefined) {
    const ev = obj(r.events, 'events');
    const sinkUrl = optStr(ev.sinkUrl, 'events.sinkUrl');
    if (sinkUrl !== undefined && !/^https?:\/\//.test(sinkUrl)) throw bad('events.sinkUrl', 'expected an http(s) URL');
    spool = {
      dir: file(ev.spoolDir, 'events.spoolDir', baseDir),
      sinkUrl,
      maxBytes: ev.maxBytes === undefined ? DEFAULT_SPOOL_MAX_BYTES : parseByteSize(ev.maxBytes as string, 'events.maxBytes'),
      agentId: ev.agentId === undefined ? 'static' : str(ev.agentId, 'events.agentId'),
    };
  }
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  if (r.limits !== undefined) {
    const l = obj(r.limits, 'limits');
    for (const [k, v] of Object.entries(l)) {
      if (!(k in DEFAULT_LIMITS)) throw bad(`limits.${k}`, 'unknown limit');
      limits[k] = k.endsWith('Ms') ? parseDuration(v as string, `limits.${k}`) : k.endsWith('Bytes') ? parseByteSize(v as string, `limits.${k}`) : Number(v);
      if (!Number.isFinite(limits[k]) || (limits[k] as number) <= 0) throw bad(`limits.${k}`, 'expected a positive value');
    }
  }
  const workers = r.workers === undefined ? 1 : Number(r.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw bad('workers', 'expected 1..64');
  const dataPlane = (r.dataPlane ?? 'auto') as AgentConfig['dataPlane'];
  if (!['auto', 'native', 'node'].includes(dataPlane)) throw bad('dataPlane', 'expected auto, native or node');
  if (dataPlane === 'native' && workers > 1) throw bad('dataPlane', 'the native data plane runs in one process: use workers: 1 or dataPlane: auto');
  const runtime = (r.runtime ?? 'lean') as AgentConfig['runtime'];
  if (runtime !== 'lean' && runtime !== 'default') throw bad('runtime', 'expected lean or default');
  const logLevel = (r.logLevel ?? 'info') as AgentConfig['logLevel'];
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw bad('logLevel', 'unknown level');
  if (inbound.length === 0 && outbound.length === 0 && httpProxy === undefined) throw bad('inbound', 'configure at least one inbound port, outbound upstream or the HTTP proxy');
  return {
    inbound,
    outbound,
    httpProxy,
    jwt,
    admin,
    spool,
    limits: limits as unknown as ProxyLimits,
    reloadIntervalMs: r.reloadInterval === undefined ? DEFAULT_RELOAD_INTERVAL_MS : parseDuration(r.reloadInterval as string, 'reloadInterval'),
    workers,
    dataPlane,
    runtime,
    logLevel,
  };
}

/** agent.yaml's `control` section (control mode only). */
function parseControlSection(v: unknown): ControlAgentConfig['control'] {
  const c = v === undefined ? {} : obj(v, 'control');
  for (const k of Object.keys(c)) if (k !== 'watchIdleTimeout') throw bad(`control.${k}`, 'unknown field');
  let watchIdleTimeoutMs: number | undefined;
  if (c.watchIdleTimeout !== undefined) {
    if (typeof c.watchIdleTimeout !== 'string' && typeof c.watchIdleTimeout !== 'number') throw bad('control.watchIdleTimeout', 'expected a duration like 45s or 2m');
    watchIdleTimeoutMs = parseDuration(c.watchIdleTimeout, 'control.watchIdleTimeout');
    const { min, max } = WATCH_IDLE_TIMEOUT_BOUNDS_MS;
    if (watchIdleTimeoutMs < min || watchIdleTimeoutMs > max) throw bad('control.watchIdleTimeout', 'must be between 1s and 1h (and above the server\'s watchHeartbeat)');
  }
  return { watchIdleTimeoutMs };
}

/** `port=8443,app=8080,protocol=http,mode=PERMISSIVE,appProtocol=h2c,host=…,appHost=…` → inbound entry. */
export function parseInboundFlag(spec: string): Raw {
  const kv = parseKv(spec, '--inbound');
  return { port: kv.port, appPort: kv.app ?? kv.appPort, protocol: kv.protocol, mode: kv.mode?.toUpperCase(), appProtocol: kv.appProtocol, host: kv.host, appHost: kv.appHost };
}

/** `name=orders,listen=9001,address=10.0.0.5:8443,id=spiffe://td/orders|spiffe://td/orders-v2` → outbound entry. */
export function parseOutboundFlag(spec: string): Raw {
  const kv = parseKv(spec, '--outbound');
  return { name: kv.name, listen: kv.listen, address: kv.address, allowedIds: kv.id?.split('|') };
}

function parseKv(spec: string, flag: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(flag, `expected key=value pairs, got "${part}"`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
