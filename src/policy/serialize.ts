/**
 * Policies back to Ward YAML documents: what `ward policy import` prints, so imported policies can
 * be reviewed, committed and applied as ordinary Ward policies.
 */
import { stringify } from 'yaml';
import type { Selector } from '../identity/selector.js';
import { API_VERSION, type AccessRule, type Operation, type Peer, type Policy, type PortRange } from './model.js';

function selectorDoc(s: Selector): Record<string, unknown> {
  return { matchExpressions: s.requirements.map((r) => ({ key: r.key, operator: r.operator, ...(r.values.length ? { values: [...r.values] } : {}) })) };
}

function portsDoc(ports: readonly PortRange[]): unknown[] {
  return ports.map((p) => (p.protocol === 'TCP' && p.port === p.endPort ? p.port : { port: p.port, ...(p.endPort !== p.port ? { endPort: p.endPort } : {}), protocol: p.protocol }));
}

function peerDoc(p: Peer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of ['spiffeIds', 'notSpiffeIds', 'namespaces', 'notNamespaces', 'requestPrincipals', 'notRequestPrincipals'] as const) if (p[f]) out[f] = [...p[f]!];
  if (p.selector) out['selector'] = selectorDoc(p.selector);
  for (const f of ['ipBlocks', 'notIpBlocks'] as const) if (p[f]) out[f] = p[f]!.map((b) => (b.except.length ? { cidr: b.cidr, except: [...b.except] } : b.cidr));
  if (p.unauthenticated !== undefined) out['unauthenticated'] = p.unauthenticated;
  return out;
}

function operationDoc(o: Operation): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.ports) out['ports'] = portsDoc(o.ports);
  if (o.notPorts) out['notPorts'] = portsDoc(o.notPorts);
  for (const f of ['methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts'] as const) if (o[f]) out[f] = [...o[f]!];
  if (o.headers) out['headers'] = Object.fromEntries(o.headers.map((h) => [h.name, [...h.values]]));
  return out;
}

function ruleDoc(r: AccessRule, direction: 'ingress' | 'egress'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.peers) out[direction === 'ingress' ? 'from' : 'to'] = r.peers.map(peerDoc);
  if (r.operations) out[direction === 'ingress' ? 'to' : 'operations'] = r.operations.map(operationDoc);
  if (r.when) out['when'] = r.when.map((c) => ({ key: c.key, ...(c.values ? { values: [...c.values] } : {}), ...(c.notValues ? { notValues: [...c.notValues] } : {}) }));
  return out;
}

/** One policy as a Ward document (plain data, ready for YAML or JSON). */
export function policyToDocument(p: Policy): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name: p.name, ...(p.namespace ? { namespace: p.namespace } : {}) };
  if (p.origin?.importedFrom) metadata['annotations'] = { 'ward.dev/imported-from': p.origin.importedFrom };
  const subject = { selector: selectorDoc(p.subject.selector), ...(p.subject.spiffeIds ? { spiffeIds: [...p.subject.spiffeIds] } : {}) };
  const spec: Record<string, unknown> = { subject, mode: p.mode };
  switch (p.kind) {
    case 'AccessPolicy':
      spec['action'] = p.action;
      if (p.ingress) spec['ingress'] = p.ingress.map((r) => ruleDoc(r, 'ingress'));
      if (p.egress) spec['egress'] = p.egress.map((r) => ruleDoc(r, 'egress'));
      break;
    case 'RuntimePolicy':
      spec['action'] = p.action;
      if (p.processes) spec['processes'] = p.processes.map((r) => ({ paths: [...r.paths], ...(r.sha256 ? { sha256: [...r.sha256] } : {}) }));
      if (p.files) spec['files'] = p.files.map((r) => ({ paths: [...r.paths], access: [...r.access] }));
      break;
    case 'MutualTLSPolicy':
      spec['mtls'] = { mode: p.mtls };
      if (p.portLevel) spec['portLevelMtls'] = Object.fromEntries(p.portLevel.map((x) => [String(x.port), { mode: x.mtls }]));
      break;
  }
  return { apiVersion: API_VERSION, kind: p.kind, metadata, spec };
}

/** Multi-document YAML of several policies. */
export function policiesToYaml(policies: readonly Policy[]): string {
  return policies.map((p) => stringify(policyToDocument(p), { lineWidth: 0 })).join('---\n');
}
