/**
 * The policy model: what parsing produces and compiling consumes. Everything here is plain,
 * JSON-serialisable data so policies travel between server and agents unchanged.
 */
import type { Selector } from '../identity/selector.js';
import type { WorkloadIdentity } from '../identity/attributes.js';

export const API_VERSION = 'ward.dev/v1alpha1';

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT';
export type PolicyMode = 'enforce' | 'dry-run' | 'learn';
export type Transport = 'TCP' | 'UDP' | 'SCTP';
export type Direction = 'ingress' | 'egress';
export type MtlsMode = 'STRICT' | 'PERMISSIVE';

/** Inclusive port range on one transport. A single port has `endPort === port`. */
export interface PortRange {
  readonly port: number;
  readonly endPort: number;
  readonly protocol: Transport;
}

export interface IpBlock {
  readonly cidr: string;
  readonly except: readonly string[];
}

/**
 * A peer: the other end of a connection. Fields AND together; values within a field OR.
 * String patterns follow Istio: `exact`, `prefix*`, `*suffix`, `*` (any value present).
 */
export interface Peer {
  /** SPIFFE ID patterns (the `spiffe://` scheme is optional in the pattern). Require an authenticated peer. */
  readonly spiffeIds?: readonly string[];
  readonly notSpiffeIds?: readonly string[];
  /** Namespace patterns, matched against the peer's `k8s.namespace` attribute. Require an authenticated peer. */
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  /** Attribute selector over the peer's identity attributes. Requires an authenticated peer. */
  readonly selector?: Selector;
  readonly ipBlocks?: readonly IpBlock[];
  readonly notIpBlocks?: readonly IpBlock[];
  /** End-user principals `issuer/subject` from a validated JWT (HTTP only). */
  readonly requestPrincipals?: readonly string[];
  readonly notRequestPrincipals?: readonly string[];
  /** `true`: only unauthenticated (plaintext) peers; `false`: only authenticated peers. */
  readonly unauthenticated?: boolean;
}

export interface HeaderMatch {
  /** Lower-cased header name. */
  readonly name: string;
  readonly values: readonly string[];
}

/** What is being done: ports everywhere; methods, paths, hosts and headers on HTTP only. */
export interface Operation {
  readonly ports?: readonly PortRange[];
  readonly notPorts?: readonly PortRange[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly headers?: readonly HeaderMatch[];
}

/** An Istio-style `when` condition: `key` is one of the documented attribute keys. */
export interface Condition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

/**
 * One rule. It matches when one peer, one operation and every condition match; an absent list
 * matches anything, an empty list matches nothing.
 */
export interface AccessRule {
  readonly peers?: readonly Peer[];
  readonly operations?: readonly Operation[];
  readonly when?: readonly Condition[];
}

/** The workloads a policy applies to: all of `spiffeIds` patterns (if given) AND the selector. */
export interface Subject {
  readonly selector: Selector;
  readonly spiffeIds?: readonly string[];
}

/** Where a policy came from, for explanations. */
export interface PolicyOrigin {
  readonly file?: string;
  readonly document?: number;
  /** `networking.k8s.io/v1/NetworkPolicy` or `security.istio.io/v1/AuthorizationPolicy` when imported. */
  readonly importedFrom?: string;
}

interface PolicyBase {
  readonly name: string;
  readonly namespace?: string;
  readonly mode: PolicyMode;
  readonly subject: Subject;
  readonly origin?: PolicyOrigin;
}

/** Network and API access. `ingress`/`egress` absent: the policy does not apply in that direction. */
export interface AccessPolicy extends PolicyBase {
  readonly kind: 'AccessPolicy';
  readonly action: PolicyAction;
  readonly ingress?: readonly AccessRule[];
  readonly egress?: readonly AccessRule[];
}

export interface ProcessRule {
  /** Executable path globs: `*` within a segment, `**` across segments, `?` one character. */
  readonly paths: readonly string[];
  /** Lower-case hex sha256 digests; when given, the executable must also have one of them. */
  readonly sha256?: readonly string[];
}

export type FileAccess = 'read' | 'write';

export interface FileRule {
  readonly paths: readonly string[];
  readonly access: readonly FileAccess[];
}

/** Runtime (process and file) policy. `processes`/`files` absent: not applied to that kind of event. */
export interface RuntimePolicy extends PolicyBase {
  readonly kind: 'RuntimePolicy';
  readonly action: PolicyAction;
  readonly processes?: readonly ProcessRule[];
  readonly files?: readonly FileRule[];
}

/** Mutual TLS mode for the subject's inbound ports. */
export interface MutualTlsPolicy extends PolicyBase {
  readonly kind: 'MutualTLSPolicy';
  readonly mtls: MtlsMode;
  readonly portLevel?: readonly { readonly port: number; readonly mtls: MtlsMode }[];
}

export type Policy = AccessPolicy | RuntimePolicy | MutualTlsPolicy;

/** A workload as the policy engine knows it: identity plus optional addresses. */
export interface PolicyWorkload extends WorkloadIdentity {
  readonly ips?: readonly string[];
}

/** `namespace/name` or `name`: how decisions and explanations name a policy. */
export function policyRef(policy: { readonly kind: string; readonly name: string; readonly namespace?: string }): string {
  return policy.namespace ? `${policy.namespace}/${policy.name}` : policy.name;
}

/**
 * What a question to the engine may carry beyond source and destination: the port and, for the
 * layer being asked about, the HTTP request, the process or the file access. Shared by
 * `ward explain` queries and PolicyTest cases so both always accept the same inputs.
 */
export interface QueryInputs {
  readonly port?: number;
  readonly protocol?: Transport;
  readonly http?: {
    readonly method: string;
    readonly path: string;
    readonly host?: string;
    readonly headers?: Readonly<Record<string, string>>;
    readonly claims?: Readonly<Record<string, unknown>>;
  };
  readonly process?: { readonly path: string; readonly sha256?: string };
  readonly file?: { readonly path: string; readonly access: FileAccess };
}
