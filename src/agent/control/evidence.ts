/**
 * The agent side of node attestation: collect evidence with the platform's collector and
 * predict the agent SPIFFE ID the server will derive (the CSR must name it, ADR 0061).
 * `join_token` for VMs and bare hosts, `k8s_psat` (projected service-account token) for pods.
 */
import type { EvidenceCollector } from '../../platforms/attestor.js';
import { agentSpiffeId } from '../../platforms/attestor.js';
import { JoinTokenCollector } from '../../platforms/join-token/collector.js';
import { hashJoinToken, joinTokenId } from '../../platforms/join-token/token.js';
import { ProjectedTokenCollector } from '../../platforms/kubernetes/attestor.js';
import { ControlError } from './errors.js';

export type AttestorChoice =
  | { readonly attestor: 'join_token'; readonly token: string }
  | { readonly attestor: 'k8s_psat'; readonly cluster: string; readonly tokenPath: string };

export interface CollectedEvidence {
  readonly attestor: string;
  readonly evidence: unknown;
  /** The agent ID the server will derive from this evidence. */
  readonly agentId: string;
}

/** Collects evidence once (join tokens are single use: call again only with a new token). */
export async function collectEvidence(choice: AttestorChoice, trustDomain: string): Promise<CollectedEvidence> {
  if (choice.attestor === 'join_token') {
    const collector: EvidenceCollector<{ token: string }> = new JoinTokenCollector(choice.token);
    const evidence = await collector.collect();
    return { attestor: 'join_token', evidence, agentId: agentSpiffeId(trustDomain, 'join_token', [joinTokenId(hashJoinToken(evidence.token))]) };
  }
  const collector = new ProjectedTokenCollector(choice.cluster, choice.tokenPath);
  const evidence = await collector.collect();
  // The server names the agent after the pod the token is bound to; read it from the token's
  // claims (unverified here: the server verifies the token by TokenReview, this only predicts).
  // jose is loaded only on this path, not by every agent (ADR 0044).
  const { decodeJwt } = await import('jose');
  let podUid: unknown;
  try {
    const claims = decodeJwt(evidence.token) as { 'kubernetes.io'?: { pod?: { uid?: unknown } } };
    podUid = claims['kubernetes.io']?.pod?.uid;
  } catch (cause) {
    throw new ControlError('ERR_CONTROL_ATTEST', 'the projected service-account token is not a JWT', { cause, details: { path: 'tokenPath' } });
  }
  if (typeof podUid !== 'string') throw new ControlError('ERR_CONTROL_ATTEST', 'the projected service-account token is not bound to a pod', { details: { path: 'tokenPath' } });
  return { attestor: 'k8s_psat', evidence, agentId: agentSpiffeId(trustDomain, 'k8s_psat', [choice.cluster, podUid]) };
}
