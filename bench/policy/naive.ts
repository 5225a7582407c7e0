/**
 * The baseline the benchmark compares against: the same compiled rules, but no subject index and
 * no decision cache — every decision scans every policy, tests its subject against the
 * destination (and source) attributes, then its rules. This is what a straightforward evaluator
 * does; the tests also use it as an oracle for the indexed, cached path.
 */
import { CompiledPolicySet, type AppliedPolicies, type WorkloadEntry } from '../../src/policy/compile.js';
import { evaluateSides } from '../../src/policy/evaluate.js';
import { parseIp } from '../../src/policy/match.js';
import type { Decision } from '../../src/policy/decision.js';
import type { ConnectionQuery, SourceRef } from '../../src/policy/evaluate.js';
import type { CompiledPolicy, PeerInfo } from '../../src/policy/compiled.js';

export class NaivePolicySet extends CompiledPolicySet {
  override applied(entry: WorkloadEntry): AppliedPolicies {
    const out: AppliedPolicies = { ingress: [], egress: [], processes: [], files: [], mtls: [], ingressCache: new Map(), ingressCacheSize: 0 };
    for (const p of this.policies) {
      if (!p.subject(entry.spiffeId, entry.principal, entry.attrs)) continue;
      if (p.ingress) (out.ingress as CompiledPolicy[]).push(p);
      if (p.egress) (out.egress as CompiledPolicy[]).push(p);
      if (p.processes) (out.processes as CompiledPolicy[]).push(p);
      if (p.files) (out.files as CompiledPolicy[]).push(p);
      if (p.mtls) (out.mtls as CompiledPolicy[]).push(p);
    }
    return out;
  }
}

const UNAUTH: PeerInfo = { authenticated: false, spiffeId: '', principal: '', namespace: '', attrs: {}, known: false, ip: undefined };

function sourcePeer(set: CompiledPolicySet, s: SourceRef): { peer: PeerInfo; entry: WorkloadEntry | undefined } {
  if ('spiffeId' in s) {
    const entry = set.workloads.get(s.spiffeId) ?? set.transientEntry(s.spiffeId);
    return { peer: s.ip === undefined ? entry.peer : { ...entry.peer, ip: parseIp(s.ip) }, entry };
  }
  if ('ip' in s) return { peer: { ...UNAUTH, ip: parseIp(s.ip) }, entry: undefined };
  return { peer: UNAUTH, entry: undefined };
}

/** A connection decision by full scan (workload destinations only). */
export function naiveEvaluateConnection(set: NaivePolicySet, q: ConnectionQuery): Decision {
  if (!('spiffeId' in q.destination)) throw new Error('naive evaluator: workload destinations only');
  const dest = set.workloads.get(q.destination.spiffeId) ?? set.transientEntry(q.destination.spiffeId);
  const { peer, entry } = sourcePeer(set, q.source);
  return evaluateSides(set, { sourcePeer: peer, sourceEntry: entry, destEntry: dest, destPeer: dest.peer }, q.port, q.protocol ?? 'TCP', q.l7 === 'http' ? 'http-connect' : 'tcp', undefined);
}
