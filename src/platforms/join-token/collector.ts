/** Agent side of `join_token`: the token comes from configuration (`--join-token` or a file). */
import type { EvidenceCollector } from '../attestor.js';
import { PlatformError } from '../errors.js';
import { JOIN_TOKEN_RE } from './token.js';
import type { JoinTokenEvidence } from './attestor.js';

export class JoinTokenCollector implements EvidenceCollector<JoinTokenEvidence> {
  readonly name = 'join_token' as const;
  readonly #token: string;

  constructor(token: string) {
    const trimmed = token.trim();
    if (!JOIN_TOKEN_RE.test(trimmed)) throw new PlatformError('ERR_ATTEST_MALFORMED', 'join token must be 43 base64url characters', { details: { path: 'joinToken' } });
    this.#token = trimmed;
  }

  async collect(): Promise<JoinTokenEvidence> {
    return { token: this.#token };
  }
}
