/**
 * Who is calling the admin API: a bearer token (looked up by id, secret compared in constant
 * time, expiry and revocation checked) or, on a TLS admin listener, a client certificate that
 * verifies as an X.509-SVID of this trust domain with a SPIFFE ID listed in `adminSpiffeIds`.
 * Anything else is ERR_SERVER_UNAUTHENTICATED; the message never says which check failed.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { Role } from '../../api/types.js';
import { ServerError } from '../errors.js';
import type { ServerContext } from '../context.js';
import { bearerToken } from './tokens.js';
import { isRole } from './roles.js';

export interface Principal {
  /** Audit name: `token:<id>`, `cert:<spiffe id>`, `agent:<spiffe id>`. */
  readonly actor: string;
  readonly role: Role | 'agent';
}

export const ANONYMOUS = 'anonymous';

function unauthenticated(): ServerError {
  return new ServerError('ERR_SERVER_UNAUTHENTICATED', 'missing or invalid credentials');
}

/**
 * DER chain of the TLS peer, leaf first; empty when there is no TLS, no client certificate, or
 * one that TLS did not verify against the trust bundle (the listener asks for a certificate but
 * lets the handshake finish without one, so `attest` works; the check is made here).
 */
export function peerChain(request: FastifyRequest): Buffer[] {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return [];
  const out: Buffer[] = [];
  let cert = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert !== undefined && cert !== null && cert.raw !== undefined && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    out.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return out;
}

export async function authenticateAdmin(ctx: ServerContext, request: FastifyRequest): Promise<Principal> {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const token = bearerToken(header);
    const record = token === undefined ? null : await ctx.store.adminTokens.verify(token);
    if (record === null || !isRole(record.role)) throw unauthenticated();
    return { actor: `token:${record.name}`, role: record.role };
  }
  const chain = peerChain(request);
  if (chain.length > 0 && ctx.config.adminSpiffeIds.length > 0) {
    let spiffeId: string;
    try {
      spiffeId = ctx.ca.verifyClientSvid(chain).spiffeId;
    } catch {
      throw unauthenticated();
    }
    if (ctx.config.adminSpiffeIds.includes(spiffeId)) return { actor: `cert:${spiffeId}`, role: 'admin' };
  }
  throw unauthenticated();
}

const verifiedSockets = new WeakMap<object, { spiffeId: string; serial: string; expiresAt: number }>();

/**
 * An agent on the agent API: its client certificate must have verified against the bundle,
 * be a current X.509-SVID of this trust domain whose serial is not revoked, and name a known,
 * unrevoked agent. Any still-valid SVID of the agent works, so rotation has no gap.
 */
export function authenticateAgent(ctx: ServerContext, request: FastifyRequest): { agentId: string; serial: string; expiresAt: number } {
  // The certificate of a kept-alive connection is parsed once; expiry and revocation are still
  // checked on every request.
  const socket = request.raw.socket;
  let verified = verifiedSockets.get(socket);
  if (verified === undefined) {
    const chain = peerChain(request);
    if (chain.length === 0) throw new ServerError('ERR_SERVER_UNAUTHENTICATED', 'a client certificate (the agent SVID) chaining to the trust bundle is required');
    try {
      verified = ctx.ca.verifyClientSvid(chain);
    } catch {
      throw new ServerError('ERR_SERVER_UNAUTHENTICATED', 'the client certificate is not a valid SVID of this trust domain');
    }
    verifiedSockets.set(socket, verified);
  }
  if (ctx.clock.now() >= verified.expiresAt) throw new ServerError('ERR_SERVER_UNAUTHENTICATED', 'the client certificate has expired');
  const agent = ctx.view.agent(verified.spiffeId);
  if (agent === undefined || agent.revoked || ctx.view.isSerialRevoked(verified.serial)) {
    throw new ServerError('ERR_SERVER_AGENT_UNKNOWN', 'the client certificate is not the SVID of a known, unrevoked agent');
  }
  return { agentId: verified.spiffeId, serial: verified.serial, expiresAt: verified.expiresAt };
}
