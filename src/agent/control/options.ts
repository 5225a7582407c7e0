/**
 * The control-plane options of `ward agent` (`--server`, `--server-bundle`, `--join-token` or `--join-token-file`,
 * `--k8s-cluster`/`--k8s-token`, `--service`, `--spiffe-id`, `--app-port`, `--watch-idle-timeout`), validated once into
 * the typed options of {@link startControlledAgent}. The proxy options (inbound, outbound,
 * limits…) are the static mode's, parsed by `parseAgentConfig`; of the control options only the
 * watch idle timeout also has an agent.yaml key (`control.watchIdleTimeout`, overridden by the flag).
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseDuration } from '../../core/config.js';
import { DEFAULT_SPOOL_MAX_BYTES, WATCH_IDLE_TIMEOUT_BOUNDS_MS, type ControlAgentConfig, type ProxyAgentConfig } from '../config.js';
import type { ControlOptions, ProxyConfig } from './agent.js';
import { ControlError } from './errors.js';
import { trustDomainOfBundle } from './session.js';

export interface ControlFlags {
  server?: string;
  serverBundle?: string;
  trustDomain?: string;
  joinToken?: string;
  /** A file holding the join token: keeps it out of the command line (`ps`, /proc/<pid>/cmdline). */
  joinTokenFile?: string;
  k8sCluster?: string;
  k8sToken?: string;
  service?: string;
  spiffeId?: string;
  appPort?: string;
  spoolDir?: string;
  watchIdleTimeout?: string;
}

/** Default mTLS port the agent serves the app on when only `--app-port` is given. */
export const DEFAULT_INBOUND_PORT = 8443;

const bad = (path: string, message: string): ControlError => new ControlError('ERR_CONTROL_CONFIG', `${path}: ${message}`, { details: { path } });

/**
 * The join token from a file (one line; surrounding whitespace ignored), read once at start:
 * the token never appears in the process's command line. The file's content is never logged.
 */
function readJoinTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ControlError('ERR_CONTROL_CONFIG', `joinTokenFile: cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { details: { path: 'joinTokenFile' } });
  }
  const token = text.trim();
  if (token.length === 0 || token.length > 512 || /\s/.test(token)) throw bad('joinTokenFile', `${path} must hold one join token on one line`);
  return token;
}

/** `--app-port 8080` → the inbound flag spec it stands for (HTTP on 8443, STRICT). */
export function appPortInbound(appPort: string): string {
  if (!/^\d{1,5}$/.test(appPort) || Number(appPort) < 1 || Number(appPort) > 65535) throw bad('appPort', 'expected a port number');
  return `port=${DEFAULT_INBOUND_PORT},app=${appPort},protocol=http`;
}

/**
 * Validates the control flags; `proxy` is the already-parsed config (`parseAgentConfig(…, 'control')`,
 * whose `control` section supplies what a flag leaves unset).
 */
export function resolveControlOptions(flags: ControlFlags, proxy: ProxyAgentConfig & Partial<Pick<ControlAgentConfig, 'control'>>, cwd: string): { proxy: ProxyConfig; control: ControlOptions } {
  if (flags.server === undefined) throw bad('server', 'required in control-plane mode');
  if (flags.serverBundle === undefined) throw bad('serverBundle', 'the server\'s trust bundle (`<data-dir>/bundle.pem`) is required to reach it safely');
  let bundle: string;
  try {
    bundle = readFileSync(resolve(cwd, flags.serverBundle), 'utf8');
  } catch (cause) {
    throw new ControlError('ERR_CONTROL_CONFIG', `serverBundle: cannot read ${flags.serverBundle}`, { cause, details: { path: 'serverBundle' } });
  }
  const trustDomain = flags.trustDomain ?? trustDomainOfBundle(bundle);
  if (trustDomain === undefined || !/^[a-z0-9._-]{1,255}$/.test(trustDomain)) throw bad('trustDomain', 'cannot tell the trust domain from the bundle; pass --trust-domain');
  let attestor: ControlOptions['attestor'];
  const chosen = [flags.joinToken, flags.joinTokenFile, flags.k8sCluster].filter((v) => v !== undefined).length;
  if (chosen !== 1) throw bad('joinToken', 'give exactly one attestor: --join-token, --join-token-file, or --k8s-cluster (with --k8s-token)');
  if (flags.joinToken !== undefined) attestor = { attestor: 'join_token', token: flags.joinToken };
  else if (flags.joinTokenFile !== undefined) attestor = { attestor: 'join_token', token: readJoinTokenFile(resolve(cwd, flags.joinTokenFile)) };
  else attestor = { attestor: 'k8s_psat', cluster: flags.k8sCluster as string, tokenPath: resolve(cwd, flags.k8sToken ?? '/var/run/secrets/tokens/ward-agent') };
  if (flags.service !== undefined && !/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(flags.service)) throw bad('service', 'expected a DNS-style service name');
  if (flags.spiffeId !== undefined && !flags.spiffeId.startsWith(`spiffe://${trustDomain}/`)) throw bad('spiffeId', `expected a SPIFFE ID in ${trustDomain}`);
  let watchIdleTimeoutMs = proxy.control?.watchIdleTimeoutMs;
  if (flags.watchIdleTimeout !== undefined) {
    try {
      watchIdleTimeoutMs = parseDuration(flags.watchIdleTimeout, 'watchIdleTimeout');
    } catch (cause) {
      throw new ControlError('ERR_CONTROL_CONFIG', `watchIdleTimeout: "${flags.watchIdleTimeout}" is not a duration like 45s or 2m`, { cause, details: { path: 'watchIdleTimeout' } });
    }
    if (watchIdleTimeoutMs < WATCH_IDLE_TIMEOUT_BOUNDS_MS.min || watchIdleTimeoutMs > WATCH_IDLE_TIMEOUT_BOUNDS_MS.max) throw bad('watchIdleTimeout', 'must be between 1s and 1h (and above the server\'s watchHeartbeat)');
  }
  const spoolDir = proxy.spool?.dir ?? join(tmpdir(), `ward-agent-spool-${flags.service ?? 'default'}`);
  return {
    proxy: Object.freeze({
      inbound: proxy.inbound,
      outbound: proxy.outbound,
      httpProxy: proxy.httpProxy,
      jwt: proxy.jwt,
      admin: proxy.admin,
      limits: proxy.limits,
      dataPlane: proxy.dataPlane,
      spool: { dir: spoolDir, maxBytes: proxy.spool?.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES },
    }),
    control: Object.freeze({
      serverUrl: flags.server,
      serverBundlePem: bundle,
      trustDomain,
      attestor,
      ...(flags.service === undefined ? {} : { service: flags.service }),
      ...(flags.spiffeId === undefined ? {} : { spiffeId: flags.spiffeId }),
      ...(watchIdleTimeoutMs === undefined ? {} : { watchIdleTimeoutMs }),
    }),
  };
}
