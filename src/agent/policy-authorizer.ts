/**
 * The agent's {@link Authorizer} backed by the policy engine: Ward's own `ward.dev/v1alpha1`
 * policies compiled once (src/policy), plus the attribute table of the peers they mention, which
 * the control plane updates at run time (a scan raising `vuln.critical` changes the next decision).
 *
 * Connection decisions use the peer's verified SPIFFE ID and its attributes from the table;
 * request decisions add method, normalised path, host, headers and end-user JWT claims. Dry-run
 * and learn policies never change a decision: what they would have decided travels in
 * `Decision.dryRun` / `PolicyDecision.engine.dryRun`. Anything the engine cannot evaluate (an
 * unknown outbound service, a malformed query) is denied: fail closed.
 */
import { isIP } from 'node:net';
import type { AttributeSet } from '../identity/attributes.js';
// The policy modules themselves, not the index: the agent needs neither importers, explain, the
// PolicyTest runner nor policy learning in its heap.
import { compilePolicies, type CompiledPolicySet } from '../policy/compile.js';
import { evaluateConnection, evaluateRequest, type SourceRef } from '../policy/evaluate.js';
import type { Decision as EngineDecision } from '../policy/decision.js';
import type { Policy, PolicyWorkload } from '../policy/model.js';
import type { Authorizer, ConnectionContext, Decision, PeerIdentity, RequestContext } from './proxy/authorizer.js';

/** Where an outbound upstream (by service name) leads: the identity and port policies talk about. */
export interface OutboundTarget {
  readonly spiffeId: string;
  readonly port: number;
  /** The target port speaks HTTP: ALLOW rules with HTTP fields may admit the connection, to be decided per request there. */
  readonly http: boolean;
}

export interface PolicyAuthorizerOptions {
  /** Inbound ports that carry HTTP: their connection check leaves HTTP-only rules to the request check. */
  readonly httpPorts?: Iterable<number>;
  /** Outbound service name → target. A service not listed is denied. */
  readonly outbound?: ReadonlyMap<string, OutboundTarget>;
}

/**
 * Outbound targets from the agent's upstreams: the first allowed SPIFFE ID without a wildcard
 * names the service's identity, the upstream's address port is the port policies see. A service
 * whose IDs are all wildcards gets no target and is denied (`unknown-service`).
 */
export function outboundTargets(config: { readonly outbound: readonly { readonly name: string; readonly port: number; readonly allowedIds: readonly string[] }[] }, httpServices: ReadonlySet<string> | 'all' = 'all'): Map<string, OutboundTarget> {
  const out = new Map<string, OutboundTarget>();
  for (const up of config.outbound) {
    const id = up.allowedIds.find((i) => !i.endsWith('*'));
    if (id !== undefined) out.set(up.name, { spiffeId: id, port: up.port, http: httpServices === 'all' || httpServices.has(up.name) });
  }
  return out;
}

/** The agent decision plus the policy engine's full decision, for events and explanations. */
export interface PolicyDecision extends Decision {
  readonly engine: EngineDecision | undefined;
}

function deny(reference: string): PolicyDecision {
  return Object.freeze({ allow: false, reference, engine: undefined });
}

/** `policy/ingress[0]`, or the reason (`default-deny`, `mtls-required`, `not-protected`, `invalid-request`). */
export function decisionReference(d: EngineDecision): string {
  if (d.policy === undefined) return d.reason;
  return `${d.policy}/${d.direction ?? 'rule'}[${d.rule ?? 0}]`;
}

function toAgentDecision(d: EngineDecision): PolicyDecision {
  const out: { -readonly [K in keyof PolicyDecision]: PolicyDecision[K] } = { allow: d.allowed, reference: decisionReference(d), engine: d };
  // Allowed now, denied once dry-run policies are enforced: the caller allows and records.
  if (d.allowed && d.dryRun !== undefined && !d.dryRun.allowed) out.dryRun = true;
  return Object.freeze(out);
}

/**
 * The engine's source for a peer. Its address goes along only when some rule of the set looks
 * at addresses: an address-qualified source misses the identity-only decision cache.
 */
function sourceOf(peer: PeerIdentity, withAddress: boolean): SourceRef {
  const ip = withAddress ? peerIp(peer.address) : undefined;
  if (peer.authenticated) return ip === undefined ? { spiffeId: peer.spiffeId } : { spiffeId: peer.spiffeId, ip };
  return ip === undefined ? { unauthenticated: true } : { ip };
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`; not an IP → undefined. */
function peerIp(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIP(v4) !== 0 ? v4 : undefined;
}

function flatHeaders(headers: RequestContext['headers']): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (v === undefined) continue;
    out[name] = Array.isArray(v) ? v.join(',') : (v as string);
  }
  return out;
}

/** Changes to the peer attribute table, as the watch stream delivers them. */
export interface WorkloadChanges {
  /** Replace the whole table with `upsert` (a watch `reset`). */
  readonly reset?: boolean;
  readonly upsert: readonly { readonly spiffeId: string; readonly attributes: AttributeSet }[];
  readonly removed?: readonly string[];
}

export class PolicyAuthorizer implements Authorizer {
  readonly #set: CompiledPolicySet;
  readonly #policyVersion: string;
  readonly #httpPorts: ReadonlySet<number>;
  readonly #outbound: ReadonlyMap<string, OutboundTarget>;

  private constructor(set: CompiledPolicySet, policyVersion: string, httpPorts: ReadonlySet<number>, outbound: ReadonlyMap<string, OutboundTarget>) {
    this.#set = set;
    this.#policyVersion = policyVersion;
    this.#httpPorts = httpPorts;
    this.#outbound = outbound;
  }

  /**
   * Compiles policies and the known workloads. Throws the policy layer's error on invalid input
   * (duplicate names); the caller keeps its previous authorizer then (fail-static).
   *
   * @example
   * const authz = PolicyAuthorizer.compile({ policies, workloads }, 'rv-12', { httpPorts: [8443] });
   * holder.set(authz);
   */
  static compile(input: { policies: readonly Policy[]; workloads: readonly PolicyWorkload[] }, policyVersion: string, options: PolicyAuthorizerOptions = {}): PolicyAuthorizer {
    return new PolicyAuthorizer(compilePolicies(input), policyVersion, new Set(options.httpPorts ?? []), options.outbound ?? new Map());
  }

  /** Changes whenever a decision could change: new policies or a changed attribute table. */
  get version(): string {
    return `${this.#policyVersion}:${this.#set.version}`;
  }

  /** The compiled set (for explanations with `explain` from src/policy). */
  get compiled(): CompiledPolicySet {
    return this.#set;
  }

  /** The SPIFFE IDs in the attribute table. */
  knownWorkloads(): string[] {
    return [...this.#set.workloads.keys()];
  }

  /**
   * Applies attribute changes to the shared table and returns an authorizer to hand to
   * `AuthorizerHolder.set` (its new `version` makes live connections re-check).
   */
  withWorkloads(changes: WorkloadChanges): PolicyAuthorizer {
    if (changes.reset === true) {
      const keep = new Set(changes.upsert.map((w) => w.spiffeId));
      for (const id of [...this.#set.workloads.keys()]) if (!keep.has(id)) this.#set.removeWorkload(id);
    }
    for (const w of changes.upsert) this.#set.updateWorkload({ spiffeId: w.spiffeId, attributes: w.attributes });
    for (const id of changes.removed ?? []) this.#set.removeWorkload(id);
    return new PolicyAuthorizer(this.#set, this.#policyVersion, this.#httpPorts, this.#outbound);
  }

  /** The same policies and table with other ports/upstreams (the agent's listeners changed). */
  withOptions(options: PolicyAuthorizerOptions): PolicyAuthorizer {
    return new PolicyAuthorizer(this.#set, this.#policyVersion, new Set(options.httpPorts ?? this.#httpPorts), options.outbound ?? this.#outbound);
  }

  authorizeConnection(ctx: ConnectionContext): PolicyDecision {
    try {
      if (ctx.direction === 'inbound') {
        return toAgentDecision(evaluateConnection(this.#set, {
          source: sourceOf(ctx.source, this.#set.usesPeerAddress),
          destination: { spiffeId: ctx.destination },
          port: ctx.port,
          l7: this.#httpPorts.has(ctx.port) ? 'http' : 'tcp',
        }));
      }
      const target = this.#outbound.get(ctx.destination);
      if (target === undefined) return deny('unknown-service');
      return toAgentDecision(evaluateConnection(this.#set, {
        source: { spiffeId: ctx.source.spiffeId },
        destination: { spiffeId: target.spiffeId },
        port: target.port,
        l7: target.http ? 'http' : 'tcp',
      }));
    } catch {
      return deny('invalid-request');
    }
  }

  authorizeRequest(ctx: RequestContext): PolicyDecision {
    const conn = ctx.connection;
    if (conn.direction !== 'inbound') return deny('invalid-request');
    try {
      return toAgentDecision(evaluateRequest(this.#set, {
        source: sourceOf(conn.source, this.#set.usesPeerAddress),
        destination: { spiffeId: conn.destination },
        port: conn.port,
        method: ctx.method,
        path: ctx.path,
        host: ctx.host,
        headers: flatHeaders(ctx.headers),
        ...(ctx.jwtClaims === undefined ? {} : { claims: ctx.jwtClaims }),
      }));
    } catch {
      return deny('invalid-request');
    }
  }
}
