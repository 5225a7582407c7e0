/**
 * The authorization contract of the data plane. The proxy layers ask an {@link Authorizer}
 * two questions: may this connection exist (L4, inbound and outbound), and may this request
 * pass (L7). Decisions are plain data with a policy/rule reference for events and metrics.
 *
 * Contract for implementations:
 * - Pure and synchronous: no I/O on the hot path; compile everything ahead of time.
 * - Fail closed: anything not explicitly allowed is denied (DENY rules before ALLOW rules).
 * - `version` changes whenever a decision could change; the agent then re-checks live
 *   connections (L4 ones it closes, L7 ones are re-checked on their next request).
 *
 * `PolicyAuthorizer` (src/agent/policy-authorizer.ts) implements it over the policy engine in
 * both static and control mode (ADR 0045, ADR 0070).
 */

/** Who is on the other end of a connection. */
export interface PeerIdentity {
  /** The SPIFFE ID from the verified SVID, or `unauthenticated` for plaintext on a PERMISSIVE port. */
  readonly spiffeId: string;
  readonly authenticated: boolean;
  /** Attributes of the peer pushed by the control plane (empty in static mode). */
  readonly attributes: Readonly<Record<string, string | number | boolean | readonly string[]>>;
  /** The peer's IP address as the agent's socket sees it (inbound), for `ipBlocks` and `source.ip` rules. */
  readonly address?: string;
}

export const UNAUTHENTICATED = 'unauthenticated';

export interface ConnectionContext {
  readonly direction: 'inbound' | 'outbound';
  /** Inbound: the caller. Outbound: this workload. */
  readonly source: PeerIdentity;
  /** Inbound: this workload's SPIFFE ID. Outbound: the target service name. */
  readonly destination: string;
  /** Inbound: the listening port. Outbound: the upstream's local port. */
  readonly port: number;
}

export interface RequestContext {
  readonly connection: ConnectionContext;
  readonly method: string;
  /** Normalised path without query string. */
  readonly path: string;
  readonly host: string;
  /** Lower-case header names; pseudo-headers and the identity header removed. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Claims of the verified end-user JWT, when the request carried a valid one. */
  readonly jwtClaims: Readonly<Record<string, unknown>> | undefined;
}

export interface Decision {
  readonly allow: boolean;
  /** `policy/rule` that decided, or `default-deny`. */
  readonly reference: string;
  /** True when the deciding rule runs in dry-run (audit) mode: the caller allows but records. */
  readonly dryRun?: boolean;
}

export interface Authorizer {
  readonly version: string;
  authorizeConnection(ctx: ConnectionContext): Decision;
  authorizeRequest(ctx: RequestContext): Decision;
}

export const DEFAULT_DENY: Decision = Object.freeze({ allow: false, reference: 'default-deny' });

/** The authorizer used before any policy is loaded: denies everything (fail closed). */
export const denyAllAuthorizer: Authorizer = Object.freeze({
  version: 'deny-all',
  authorizeConnection: () => DEFAULT_DENY,
  authorizeRequest: () => DEFAULT_DENY,
});

/**
 * A swappable reference to the current authorizer. Layers hold the holder, never the
 * authorizer, so a policy change reaches every live connection.
 */
export class AuthorizerHolder {
  #current: Authorizer;
  readonly #listeners = new Set<(next: Authorizer) => void>();

  constructor(initial: Authorizer = denyAllAuthorizer) {
    this.#current = initial;
  }

  get current(): Authorizer {
    return this.#current;
  }

  set(next: Authorizer): void {
    this.#current = next;
    for (const listener of this.#listeners) listener(next);
  }

  onChange(listener: (next: Authorizer) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
