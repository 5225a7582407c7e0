/**
 * The registry of live connections, so a policy change, revocation or bundle rotation applies
 * to connections already open: L4 connections no longer allowed are closed at once; L7
 * connections carry the registry's epoch and re-check on their next request.
 */
import type { PeerCertificateLike } from '../../pki/svid-verify.js';
import type { AuthorizerHolder, ConnectionContext, RequestContext } from './authorizer.js';
import type { TrustState } from './trust.js';

export interface LiveConnection {
  readonly ctx: ConnectionContext;
  /** The verified peer certificate (inbound mTLS) or upstream server certificate (outbound): an X509Certificate or its DER. */
  readonly cert: PeerCertificateLike | undefined;
  /**
   * The chain the peer presented, when `cert` carries no issuer links (made from raw DER): a bundle
   * change re-verifies the peer with it (`TrustState.checkPeer`), so peers issued by an
   * intermediate stay connected when the bundle still anchors them.
   */
  readonly chain?: PeerCertificateLike;
  readonly serial: string | undefined;
  /**
   * L7 connections are re-checked per request instead of being closed here. An upgraded
   * connection (101, spliced bytes) stops being L7: it is re-checked here from then on.
   */
  l7: boolean;
  /** The request an upgraded connection was allowed for, re-authorized on every re-check. */
  request?: RequestContext;
  /** Registry epoch at the last successful check. */
  epoch: number;
  /** `TrustState.bundleVersion` when the peer was verified (set by {@link LiveConnections.add}). */
  bundleVersion?: number;
  close(reason: string): void;
}

export class LiveConnections {
  readonly #all = new Set<LiveConnection>();
  #epoch = 0;
  readonly #unsubscribe: (() => void)[];

  constructor(
    private readonly authorizers: AuthorizerHolder,
    private readonly trust: TrustState,
    private readonly onClosedByPolicy: () => void = () => undefined,
  ) {
    this.#unsubscribe = [authorizers.onChange(() => this.recheck()), trust.onChange(() => this.recheck())];
  }

  get epoch(): number {
    return this.#epoch;
  }

  get size(): number {
    return this.#all.size;
  }

  add(conn: LiveConnection): void {
    conn.epoch = this.#epoch;
    conn.bundleVersion = this.trust.bundleVersion;
    this.#all.add(conn);
  }

  delete(conn: LiveConnection): void {
    this.#all.delete(conn);
  }

  /** Why `conn` is no longer allowed, or undefined if it still is. */
  verdict(conn: LiveConnection): string | undefined {
    if (conn.serial !== undefined && this.trust.revoked.has(conn.serial)) return 'ERR_AGENT_PEER_REVOKED';
    if (conn.cert !== undefined && conn.bundleVersion !== this.trust.bundleVersion) {
      // The full X509-SVID verification against the new bundle (the chain up to one of its
      // authorities), not a direct-issuer check, which closed every intermediate-issued peer.
      const check = this.trust.checkPeer(conn.cert, conn.chain);
      if (!check.ok) return check.reason;
      conn.bundleVersion = this.trust.bundleVersion;
    }
    if (!this.authorizers.current.authorizeConnection(conn.ctx).allow) return 'ERR_AGENT_CONNECTION_DENIED';
    if (conn.request !== undefined && !this.authorizers.current.authorizeRequest(conn.request).allow) return 'ERR_AGENT_REQUEST_DENIED';
    return undefined;
  }

  /** Re-evaluates every L4 connection; bumps the epoch so L7 ones re-check lazily. */
  recheck(): void {
    this.#epoch += 1;
    for (const conn of [...this.#all]) {
      if (conn.l7) continue;
      const reason = this.verdict(conn);
      if (reason !== undefined) {
        this.#all.delete(conn);
        this.onClosedByPolicy();
        conn.close(reason);
      } else {
        conn.epoch = this.#epoch;
      }
    }
  }

  /**
   * Closes one connection whose permission ran out on its own (an upgraded connection whose
   * end-user JWT expired), counted like a policy closure. No-op if it is already gone.
   */
  expire(conn: LiveConnection, reason: string): void {
    if (!this.#all.delete(conn)) return;
    this.onClosedByPolicy();
    conn.close(reason);
  }

  /** Closes every connection (shutdown). */
  closeAll(reason: string): void {
    for (const conn of [...this.#all]) conn.close(reason);
    this.#all.clear();
  }

  dispose(): void {
    for (const u of this.#unsubscribe) u();
  }
}
