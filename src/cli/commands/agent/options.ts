/**
 * The flags of `ward agent` and `ward agent run`: every config-file field has one. Flags
 * override the file; the result is validated once by `parseAgentConfig`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { AgentError } from '../../../agent/errors.js';
import { parseAgentConfig, parseInboundFlag, parseOutboundFlag, type AgentConfig, type ProxyAgentConfig } from '../../../agent/config.js';

export interface AgentFlags {
  config?: string;
  svid?: string;
  key?: string;
  bundle?: string;
  revocations?: string;
  policyDir?: string;
  inbound?: string[];
  outbound?: string[];
  httpProxy?: string;
  jwtIssuer?: string;
  jwtAudience?: string[];
  jwksFile?: string;
  jwksUri?: string;
  admin?: string;
  spoolDir?: string;
  eventSink?: string;
  spoolMaxBytes?: string;
  agentId?: string;
  limit?: string[];
  reloadInterval?: string;
  workers?: string;
  dataPlane?: string;
  runtime?: string;
  logLevel?: string;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function addAgentOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'agent.yaml (see docs/reference/agent.md); flags override it')
    .option('--svid <file>', 'identity.svid: this workload\'s X.509-SVID (PEM, leaf first)')
    .option('--key <file>', 'identity.key: the SVID\'s private key (PEM)')
    .option('--bundle <file>', 'identity.bundle: trust bundle (PEM CA certificates)')
    .option('--revocations <file>', 'identity.revocations: revoked serial numbers, hex, one per line')
    .option('--policy-dir <dir>', 'policyDir: directory of Ward policy files (AccessPolicy, MutualTLSPolicy, Workload, NetworkPolicy, Istio AuthorizationPolicy), reloaded on change')
    .option('--inbound <spec>', 'inbound[]: port=8443,app=8080[,protocol=tcp|http][,mode=STRICT|PERMISSIVE][,appProtocol=http1|h2c][,host=][,appHost=] (repeatable)', collect)
    .option('--outbound <spec>', 'outbound[]: name=orders,listen=9001,address=host:port,id=spiffe://…[|spiffe://…] (repeatable)', collect)
    .option('--http-proxy <listen>', 'httpProxy.listen: serve CONNECT/absolute-form proxying to the outbound services')
    .option('--jwt-issuer <iss>', 'jwt.issuer: expected `iss` of end-user JWTs')
    .option('--jwt-audience <aud>', 'jwt.audiences[]: accepted `aud` (repeatable)', collect)
    .option('--jwks-file <file>', 'jwt.jwksFile: JWKS document')
    .option('--jwks-uri <url>', 'jwt.jwksUri: JWKS URL')
    .option('--admin <listen>', 'admin.listen: loopback host:port for /metrics, /healthz, /readyz ("off" to disable)')
    .option('--spool-dir <dir>', 'events.spoolDir: where flow/request events are spooled')
    .option('--event-sink <url>', 'events.sinkUrl: where event batches are POSTed')
    .option('--spool-max-bytes <size>', 'events.maxBytes: spool bound, e.g. 64MiB')
    .option('--agent-id <id>', 'events.agentId: agent ID stamped on event batches')
    .option('--limit <name=value>', 'limits.<name>: e.g. headersTimeoutMs=10s, maxHeaderBytes=16KiB (repeatable)', collect)
    .option('--reload-interval <duration>', 'reloadInterval: how often files are checked for changes')
    .option('--workers <n>', 'workers: processes sharing the listening ports')
    .option('--data-plane <auto|native|node>', 'dataPlane: where L4 bytes and TLS run (native relay thread or Node streams)')
    .option('--runtime <lean|default>', 'runtime: lean restarts the process once with small-footprint Node/V8 settings (ADR 0073)')
    .option('--log-level <level>', 'logLevel');
}

/** Reads the config file (if any), overlays the flags, validates (for static or control-plane mode). */
export function resolveAgentConfig(flags: AgentFlags, cwd: string, mode?: 'static'): AgentConfig;
export function resolveAgentConfig(flags: AgentFlags, cwd: string, mode: 'control'): ProxyAgentConfig;
export function resolveAgentConfig(flags: AgentFlags, cwd: string, mode: 'static' | 'control' = 'static'): AgentConfig | ProxyAgentConfig {
  let raw: Record<string, unknown> = {};
  let baseDir = cwd;
  if (flags.config !== undefined) {
    const path = resolve(cwd, flags.config);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new AgentError('ERR_AGENT_CONFIG', `config: cannot read ${flags.config}`, { cause, details: { path: 'config' } });
    }
    const parsed: unknown = parseYaml(text, { maxAliasCount: 10 });
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) raw = parsed as Record<string, unknown>;
    else throw new AgentError('ERR_AGENT_CONFIG', 'config: expected a YAML mapping', { details: { path: 'config' } });
    baseDir = dirname(path);
  }
  const identity = { ...(raw.identity as Record<string, unknown> | undefined) };
  if (flags.svid !== undefined) identity.svid = resolve(cwd, flags.svid);
  if (flags.key !== undefined) identity.key = resolve(cwd, flags.key);
  if (flags.bundle !== undefined) identity.bundle = resolve(cwd, flags.bundle);
  if (flags.revocations !== undefined) identity.revocations = resolve(cwd, flags.revocations);
  const merged: Record<string, unknown> = { ...raw, identity };
  if (flags.policyDir !== undefined) merged.policyDir = resolve(cwd, flags.policyDir);
  if (flags.inbound !== undefined) merged.inbound = flags.inbound.map(parseInboundFlag);
  if (flags.outbound !== undefined) merged.outbound = flags.outbound.map(parseOutboundFlag);
  if (flags.httpProxy !== undefined) merged.httpProxy = { listen: flags.httpProxy };
  if (flags.jwtIssuer !== undefined || flags.jwksFile !== undefined || flags.jwksUri !== undefined || flags.jwtAudience !== undefined) {
    const jwt = { ...(raw.jwt as Record<string, unknown> | undefined) };
    if (flags.jwtIssuer !== undefined) jwt.issuer = flags.jwtIssuer;
    if (flags.jwtAudience !== undefined) jwt.audiences = flags.jwtAudience;
    if (flags.jwksFile !== undefined) jwt.jwksFile = resolve(cwd, flags.jwksFile);
    if (flags.jwksUri !== undefined) jwt.jwksUri = flags.jwksUri;
    merged.jwt = jwt;
  }
  if (flags.admin !== undefined) merged.admin = flags.admin === 'off' ? 'off' : { listen: flags.admin };
  if (flags.spoolDir !== undefined || flags.eventSink !== undefined || flags.spoolMaxBytes !== undefined || flags.agentId !== undefined) {
    const ev = { ...(raw.events as Record<string, unknown> | undefined) };
    if (flags.spoolDir !== undefined) ev.spoolDir = resolve(cwd, flags.spoolDir);
    if (flags.eventSink !== undefined) ev.sinkUrl = flags.eventSink;
    if (flags.spoolMaxBytes !== undefined) ev.maxBytes = flags.spoolMaxBytes;
    if (flags.agentId !== undefined) ev.agentId = flags.agentId;
    merged.events = ev;
  }
  if (flags.limit !== undefined) {
    const limits = { ...(raw.limits as Record<string, unknown> | undefined) };
    for (const l of flags.limit) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new AgentError('ERR_AGENT_CONFIG', '--limit: expected name=value', { details: { path: 'limits' } });
      limits[l.slice(0, eq)] = l.slice(eq + 1);
    }
    merged.limits = limits;
  }
  if (flags.reloadInterval !== undefined) merged.reloadInterval = flags.reloadInterval;
  if (flags.workers !== undefined) merged.workers = flags.workers;
  if (flags.dataPlane !== undefined) merged.dataPlane = flags.dataPlane;
  if (flags.runtime !== undefined) merged.runtime = flags.runtime;
  if (flags.logLevel !== undefined) merged.logLevel = flags.logLevel;
  return mode === 'control' ? parseAgentConfig(merged, baseDir, 'control') : parseAgentConfig(merged, baseDir);
}
