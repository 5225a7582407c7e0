/**
 * Originates mTLS to a named upstream service and accepts the server only if its SVID chains
 * to the bundle, is not revoked, and carries a SPIFFE ID the service is allowed to present
 * (no man in the middle by a peer holding a valid SVID for another service). The check runs
 * inside the handshake (`checkServerIdentity`), before any application byte is sent.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { AgentError } from '../errors.js';
import type { PeerCertificateLike } from '../../pki/svid-verify.js';
import type { TrustState } from './trust.js';

export interface UpstreamService {
  /** Service name the app and policy use (`orders`). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** SPIFFE IDs the service's servers may present; `prefix*` allowed. */
  readonly allowedIds: readonly string[];
}

export function idAllowed(id: string, allowed: readonly string[]): boolean {
  for (const a of allowed) {
    if (a === id || (a.endsWith('*') && id.startsWith(a.slice(0, -1)))) return true;
  }
  return false;
}

export interface UpstreamConnection {
  readonly socket: TLSSocket;
  /** The server's leaf as DER (no X509Certificate is made per connection). */
  readonly cert: PeerCertificateLike;
  /** The chain the server presented (for re-verification when the bundle changes). */
  readonly chain: PeerCertificateLike;
  readonly spiffeId: string;
  readonly serial: string;
}

/** Connects and verifies; rejects with an {@link AgentError} naming why. */
export function connectUpstream(service: UpstreamService, trust: TrustState, timeoutMs: number, alpn?: readonly string[]): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    let verified: { cert: PeerCertificateLike; chain: PeerCertificateLike; spiffeId: string; serial: string } | undefined;
    let failure: AgentError | undefined;
    const socket = tlsConnect({
      host: service.host,
      port: service.port,
      secureContext: trust.secureContext,
      rejectUnauthorized: true,
      ALPNProtocols: alpn === undefined ? undefined : [...alpn],
      checkServerIdentity: (_host, peer) => {
        // DER only: no X509Certificate per connection (see PeerVerifier.verify).
        const cert: PeerCertificateLike = { raw: peer.raw };
        const check = trust.checkPeer(cert, peer);
        if (!check.ok) {
          failure = new AgentError(check.reason, 'upstream certificate rejected', { details: { service: service.name } });
          return failure;
        }
        if (!idAllowed(check.spiffeId, service.allowedIds)) {
          failure = new AgentError('ERR_AGENT_PEER_UNEXPECTED', 'upstream presented an unexpected SPIFFE ID', { details: { service: service.name, presented: check.spiffeId } });
          return failure;
        }
        const kept = check.chain ?? { raw: Buffer.from(peer.raw) };
        verified = { cert: kept, chain: check.chain ?? peer, spiffeId: check.spiffeId, serial: check.serial };
        return undefined;
      },
    });
    const timer = setTimeout(() => socket.destroy(new AgentError('ERR_AGENT_UPSTREAM', 'upstream connect timed out')), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (verified === undefined) {
        socket.destroy();
        reject(new AgentError('ERR_AGENT_PEER_ID_INVALID', 'upstream certificate not verified'));
        return;
      }
      resolve({ socket, ...verified });
    });
    socket.once('error', (error: Error & { code?: string }) => {
      clearTimeout(timer);
      socket.destroy();
      if (failure !== undefined) reject(failure);
      else if (error instanceof AgentError) reject(error);
      else if (/certificate|verify|self.signed|issuer/i.test(`${error.code ?? ''} ${error.message}`)) reject(new AgentError('ERR_AGENT_PEER_UNVERIFIED', 'upstream certificate does not chain to the trust bundle', { cause: error }));
      else reject(new AgentError('ERR_AGENT_UPSTREAM', 'upstream unreachable', { cause: error, details: { service: service.name } }));
    });
  });
}
