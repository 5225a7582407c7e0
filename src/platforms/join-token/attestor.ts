/**
 * `join_token` node attestor: redeems a single-use join token. See docs/reference/attestors.md.
 */
import { timingSafeEqual } from 'node:crypto';
import { agentSpiffeId, ResultBuilder, type AttestContext, type AttestationResult, type Attestor } from '../attestor.js';
import { PlatformError } from '../errors.js';
import { expectObject, expectString } from '../evidence.js';
import { hashJoinToken, joinTokenId, JOIN_TOKEN_KIND, JOIN_TOKEN_RE } from './token.js';

/** Evidence an agent sends: `{ "token": "<43 base64url chars>" }`. */
export interface JoinTokenEvidence {
  readonly token: string;
}

export function parseJoinTokenEvidence(raw: unknown): JoinTokenEvidence {
  const obj = expectObject(raw, 'join_token');
  return { token: expectString(obj.token, 'join_token.token', { max: 43, pattern: JOIN_TOKEN_RE }) };
}

export class JoinTokenAttestor implements Attestor {
  readonly name = 'join_token' as const;
  readonly kind = 'node' as const;

  /** `join_token/<token id>`: follows from the token alone (its hash), nothing is redeemed. */
  predictAgentId(evidence: unknown, trustDomain: string): string {
    return agentSpiffeId(trustDomain, this.name, [joinTokenId(hashJoinToken(parseJoinTokenEvidence(evidence).token))]);
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const { token } = parseJoinTokenEvidence(evidence);
    const hash = hashJoinToken(token);
    const now = ctx.clock.now();
    const redeemed = await ctx.state.redeemCredential(JOIN_TOKEN_KIND, hash, now);
    if (redeemed.outcome === 'unknown') throw new PlatformError('ERR_ATTEST_FORGED', 'join token is not known to this server');
    // The store keyed on the hash; compare again in constant time so a store with a lax
    // collation (case-insensitive, trimmed) can never make a different token match.
    const stored = Buffer.from(redeemed.record.data['@hash'] ?? '', 'utf8');
    const computed = Buffer.from(hash, 'utf8');
    if (stored.length !== computed.length || !timingSafeEqual(stored, computed)) {
      throw new PlatformError('ERR_ATTEST_FORGED', 'join token is not known to this server');
    }
    const id = joinTokenId(hash);
    if (redeemed.outcome === 'used') throw new PlatformError('ERR_ATTEST_REPLAYED', 'join token was already used', { details: { tokenId: id } });
    if (now >= redeemed.record.expiresAt) throw new PlatformError('ERR_ATTEST_EXPIRED', 'join token has expired', { details: { tokenId: id } });

    const out = new ResultBuilder(this.name, now).selector('id', id);
    for (const [key, value] of Object.entries(redeemed.record.data)) {
      if (key.startsWith('@')) continue;
      out.attribute(key, value);
    }
    const hostName = redeemed.record.data['host.name'];
    if (hostName !== undefined) out.selector('host-name', hostName);
    return out.build(agentSpiffeId(ctx.trustDomain, this.name, [id]));
  }
}
