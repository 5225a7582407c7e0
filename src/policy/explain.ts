/**
 * Explanations: the decision plus every policy that was considered, rule by rule, and why each
 * rule did or did not match — what `ward explain` prints.
 */
import { PolicyError } from './errors.js';
import { parseIp } from './match.js';
import type { CompiledPolicySet } from './compile.js';
import type { Decision, Verdict } from './decision.js';
import {
  evaluateFile,
  evaluateProcess,
  evaluateRequest,
  traceConnection,
  type DestinationRef,
  type PolicyTrace,
  type SourceRef,
} from './evaluate.js';
import type { QueryInputs } from './model.js';

export interface ExplainQuery extends QueryInputs {
  readonly source?: SourceRef;
  readonly destination: DestinationRef;
}

export interface Explanation {
  readonly decision: Decision;
  readonly policies: readonly PolicyTrace[];
  /** One line per fact, ready to print. */
  readonly summary: readonly string[];
}

/**
 * Parses `spiffe://…`, an IPv4/IPv6 address, or `unauthenticated` into a source.
 *
 * @example
 * parseSourceRef('10.0.0.7'); // { ip: '10.0.0.7' }
 */
export function parseSourceRef(text: string): SourceRef {
  if (text === 'unauthenticated') return { unauthenticated: true };
  if (text.startsWith('spiffe://')) return { spiffeId: text };
  if (parseIp(text)) return { ip: text };
  throw new PolicyError('ERR_POLICY_QUERY', `source must be a SPIFFE ID, an IP address or "unauthenticated", got ${JSON.stringify(text.slice(0, 80))}`);
}

export function parseDestinationRef(text: string): DestinationRef {
  if (text.startsWith('spiffe://')) return { spiffeId: text };
  if (parseIp(text)) return { ip: text };
  throw new PolicyError('ERR_POLICY_QUERY', `destination must be a SPIFFE ID or an IP address, got ${JSON.stringify(text.slice(0, 80))}`);
}

function describeVerdict(v: Verdict): string {
  const who = v.policy === undefined ? '' : ` by ${v.policy} rule ${v.rule} (${v.action}, ${v.mode})`;
  switch (v.reason) {
    case 'allowed': return `ALLOW${who}`;
    case 'denied': return `DENY${who}`;
    case 'default-deny': return `DENY: no rule allows (default deny${v.direction ? ` on ${v.direction}` : ''})`;
    case 'not-protected': return `ALLOW: no ALLOW policy selects this workload${v.direction ? ` for ${v.direction}` : ''} (not protected)`;
    case 'mtls-required': return `DENY: ${v.detail ?? 'mutual TLS required'} (mTLS STRICT; plaintext is refused)`;
    case 'invalid-request': return `DENY: request refused before policy (${v.detail ?? 'invalid'})`;
  }
}

/**
 * Evaluates a query with a full trace. Connection, request, process or file depending on which
 * fields are set.
 *
 * @example
 * const e = explain(set, { source: parseSourceRef(from), destination: parseDestinationRef(to), port: 8080 });
 * console.log(e.summary.join('\n'));
 */
export function explain(set: CompiledPolicySet, q: ExplainQuery): Explanation {
  const traces: PolicyTrace[] = [];
  let decision: Decision;
  if (q.process || q.file) {
    if (!('spiffeId' in q.destination)) throw new PolicyError('ERR_POLICY_QUERY', 'runtime queries need a workload SPIFFE ID');
    decision = q.process
      ? evaluateProcess(set, { workload: q.destination.spiffeId, path: q.process.path, ...(q.process.sha256 ? { sha256: q.process.sha256 } : {}) }, traces)
      : evaluateFile(set, { workload: q.destination.spiffeId, path: q.file!.path, access: q.file!.access }, traces);
  } else {
    if (q.port === undefined || !q.source) throw new PolicyError('ERR_POLICY_QUERY', 'connection and request queries need a source and a port');
    decision = q.http
      ? evaluateRequest(set, { source: q.source, destination: q.destination, port: q.port, ...q.http }, traces)
      : traceConnection(set, { source: q.source, destination: q.destination, port: q.port, ...(q.protocol ? { protocol: q.protocol } : {}) }, traces);
  }
  const summary: string[] = [`decision: ${describeVerdict(decision)}`];
  if (decision.egress && decision.ingress) {
    summary.push(`  egress (source):       ${describeVerdict(decision.egress)}`);
    summary.push(`  ingress (destination): ${describeVerdict(decision.ingress)}`);
  }
  if (decision.dryRun) {
    const same = decision.dryRun.allowed === decision.allowed;
    summary.push(`dry-run: would ${same ? 'also ' : ''}${describeVerdict(decision.dryRun)}${same ? '' : '  <-- differs once dry-run/learn policies are enforced'}`);
  }
  for (const a of decision.audit) summary.push(`audit: ${a.policy} rule ${a.rule} matched`);
  if (traces.length === 0) summary.push('policies considered: none select this workload');
  else summary.push('policies considered:');
  for (const t of traces) {
    const from = t.importedFrom ? ` [from ${t.importedFrom}]` : '';
    summary.push(`  ${t.direction.padEnd(7)} ${t.action.padEnd(5)} ${t.mode.padEnd(7)} ${t.policy}${from}`);
    if (t.rules.length === 0) summary.push(`      (no rules: ${t.action === 'ALLOW' ? 'allows nothing' : 'matches nothing'})`);
    for (const r of t.rules) {
      summary.push(`      rule ${r.index}: ${r.matched ? 'MATCH' : `no match (${failedText(r.failed)})`}`);
    }
  }
  return { decision, policies: traces, summary };
}

function failedText(failed: string | undefined): string {
  switch (failed) {
    case 'peers': return 'from/to peer did not match';
    case 'operations': return 'operation (port, method, path, host, header) did not match';
    case 'when': return 'a when condition did not match';
    case 'http-only-fields': return 'uses HTTP-only fields: ignored for this TCP/connection-level decision';
    case 'path': return 'executable path or sha256 did not match';
    case 'access': return 'file path or access did not match';
    default: return 'did not match';
  }
}
