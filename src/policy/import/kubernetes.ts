/**
 * Import of Kubernetes `networking.k8s.io/v1` NetworkPolicy into a Ward AccessPolicy with the same
 * meaning:
 *
 * - `podSelector` (in the policy's namespace) becomes the subject: `k8s.namespace == <ns>` plus
 *   `k8s.label.<key>` requirements;
 * - peers: `podSelector` alone selects pods of the policy's namespace; `namespaceSelector` selects
 *   on namespace labels, which are workload attributes `k8s.namespace.label.<key>`; both together
 *   AND; `ipBlock` keeps `cidr` and `except`;
 * - `ports` keep `protocol` (default TCP) and `endPort`; a protocol without a port means every port;
 * - `policyTypes` (default: Ingress, plus Egress when `egress` is present) decides which
 *   directions the policy isolates: a listed direction with no rules allows nothing.
 *
 * Named ports cannot be resolved without the pod spec and are rejected with
 * `ERR_POLICY_IMPORT_UNSUPPORTED`.
 */
import type { SelectorRequirement } from '../../identity/selector.js';
import { selectorOf } from '../../identity/selector.js';
import { isAttributeKey } from '../../identity/attributes.js';
import { cidrCheck } from '../fields.js';
import { cidrWithin, parseCidr } from '../match.js';
import type { AccessPolicy, AccessRule, IpBlock, Peer, PortRange, Transport } from '../model.js';
import { DocReader, join, type Json } from '../reader.js';
import { loadYamlDocuments } from '../yaml.js';
import type { PolicyIssue } from '../errors.js';

const LABEL_SELECTOR_OPS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

/** Converts a Kubernetes LabelSelector into requirements on `<prefix><label key>`. */
export function readLabelSelector(r: DocReader, value: unknown, path: string, prefix: string): SelectorRequirement[] | undefined {
  if (value === undefined || value === null) return [];
  const obj = r.record(value, path);
  if (!obj) return undefined;
  r.fields(obj, path, ['matchLabels', 'matchExpressions']);
  const before = r.issues.length;
  const out: SelectorRequirement[] = [];
  const key = (label: unknown, p: string): string | undefined => {
    if (typeof label !== 'string' || !/^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(label)) {
      return r.issue('ERR_POLICY_VALUE', p, `not a valid label key: ${JSON.stringify(label)}`);
    }
    const k = `${prefix}${label}`;
    return isAttributeKey(k) ? k : r.issue('ERR_POLICY_VALUE', p, `label key too long: ${label}`);
  };
  const labels = obj['matchLabels'] === undefined || obj['matchLabels'] === null ? {} : r.record(obj['matchLabels'], join(path, 'matchLabels'));
  for (const [label, v] of Object.entries(labels ?? {})) {
    const p = join(join(path, 'matchLabels'), label);
    const k = key(label, p);
    const s = r.string(v, p, { nonEmpty: false, max: 63 });
    if (k && s !== undefined) out.push({ key: k, operator: 'Equals', values: [s] });
  }
  const exprs = obj['matchExpressions'] === undefined || obj['matchExpressions'] === null ? [] : r.list(obj['matchExpressions'], join(path, 'matchExpressions'), 256);
  (exprs ?? []).forEach((e, i) => {
    const p = join(join(path, 'matchExpressions'), i);
    const o = r.record(e, p);
    if (!o) return;
    r.fields(o, p, ['key', 'operator', 'values']);
    const k = key(o['key'], join(p, 'key'));
    const op = r.oneOf(o['operator'], join(p, 'operator'), LABEL_SELECTOR_OPS);
    const values = o['values'] === undefined || o['values'] === null ? [] : r.strings(o['values'], join(p, 'values'));
    if (!k || !op || !values) return;
    if ((op === 'In' || op === 'NotIn') && values.length === 0) return void r.issue('ERR_POLICY_VALUE', join(p, 'values'), `${op} needs values`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) return void r.issue('ERR_POLICY_VALUE', join(p, 'values'), `${op} takes no values`);
    out.push({ key: k, operator: op, values });
  });
  return r.issues.length === before ? out : undefined;
}

function readK8sPorts(r: DocReader, value: unknown, path: string): PortRange[] | undefined {
  const items = r.list(value, path, 1024);
  if (!items) return undefined;
  const out: PortRange[] = [];
  const before = r.issues.length;
  items.forEach((item, i) => {
    const p = join(path, i);
    const o = r.record(item, p);
    if (!o) return;
    r.fields(o, p, ['port', 'endPort', 'protocol']);
    const protocol = (o['protocol'] === undefined ? 'TCP' : r.oneOf(o['protocol'], join(p, 'protocol'), ['TCP', 'UDP', 'SCTP'] as const)) as Transport | undefined;
    if (typeof o['port'] === 'string' && !/^[0-9]+$/.test(o['port'])) {
      return void r.issue('ERR_POLICY_IMPORT_UNSUPPORTED', join(p, 'port'), `named port ${JSON.stringify(o['port'])} cannot be resolved without the pod spec; use the port number`);
    }
    if (o['port'] === undefined) {
      if (o['endPort'] !== undefined) r.issue('ERR_POLICY_VALUE', join(p, 'endPort'), 'endPort needs port');
      if (protocol) out.push({ port: 1, endPort: 65535, protocol });
      return;
    }
    const port = r.integer(typeof o['port'] === 'string' ? Number(o['port']) : o['port'], join(p, 'port'), 1, 65535);
    const endPort = o['endPort'] === undefined ? port : r.integer(o['endPort'], join(p, 'endPort'), 1, 65535);
    if (port === undefined || endPort === undefined || !protocol) return;
    if (endPort < port) return void r.issue('ERR_POLICY_VALUE', join(p, 'endPort'), 'endPort must not be below port');
    out.push({ port, endPort, protocol });
  });
  return r.issues.length === before ? out : undefined;
}

function readK8sPeer(r: DocReader, value: unknown, path: string, namespace: string): Peer | undefined {
  const o = r.record(value, path);
  if (!o) return undefined;
  r.fields(o, path, ['podSelector', 'namespaceSelector', 'ipBlock']);
  if (o['ipBlock'] !== undefined) {
    if (o['podSelector'] !== undefined || o['namespaceSelector'] !== undefined) {
      return r.issue('ERR_POLICY_SCHEMA', path, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    }
    const b = r.record(o['ipBlock'], join(path, 'ipBlock'));
    if (!b) return undefined;
    r.fields(b, join(path, 'ipBlock'), ['cidr', 'except']);
    const cidr = r.string(b['cidr'], join(path, 'ipBlock.cidr'), { max: 64 });
    const except = b['except'] === undefined || b['except'] === null ? [] : r.strings(b['except'], join(path, 'ipBlock.except'), cidrCheck);
    if (cidr === undefined || !except) return undefined;
    if (!cidr.includes('/')) return r.issue('ERR_POLICY_VALUE', join(path, 'ipBlock.cidr'), 'expected CIDR notation');
    const problem = cidrCheck(cidr);
    if (problem) return r.issue('ERR_POLICY_VALUE', join(path, 'ipBlock.cidr'), problem);
    for (const [j, e] of except.entries()) {
      if (!cidrWithin(parseCidr(e), parseCidr(cidr))) return r.issue('ERR_POLICY_VALUE', `${join(path, 'ipBlock.except')}[${j}]`, `${e} is not inside ${cidr}`);
    }
    const block: IpBlock = { cidr, except };
    return { ipBlocks: [block] };
  }
  if (o['podSelector'] === undefined && o['namespaceSelector'] === undefined) {
    return r.issue('ERR_POLICY_SCHEMA', path, 'a peer needs podSelector, namespaceSelector or ipBlock');
  }
  const pods = readLabelSelector(r, o['podSelector'], join(path, 'podSelector'), 'k8s.label.');
  const namespaces = o['namespaceSelector'] === undefined
    ? [{ key: 'k8s.namespace', operator: 'Equals' as const, values: [namespace] }]
    : readLabelSelector(r, o['namespaceSelector'], join(path, 'namespaceSelector'), 'k8s.namespace.label.');
  if (!pods || !namespaces) return undefined;
  // An empty selector still requires an authenticated, known workload: Ward selects identities, not IPs.
  return { selector: selectorOf([...namespaces, ...pods]) };
}

function readK8sRules(r: DocReader, value: unknown, path: string, peersField: 'from' | 'to', namespace: string): AccessRule[] | undefined {
  if (value === undefined || value === null) return [];
  const items = r.list(value, path, 4096);
  if (!items) return undefined;
  const out: AccessRule[] = [];
  const before = r.issues.length;
  items.forEach((item, i) => {
    const p = join(path, i);
    const o = r.record(item, p);
    if (!o) return;
    r.fields(o, p, [peersField, 'ports']);
    const rule: { peers?: Peer[]; operations?: { ports: PortRange[] }[] } = {};
    const peersRaw = o[peersField];
    if (peersRaw !== undefined && peersRaw !== null) {
      const list = r.list(peersRaw, join(p, peersField), 1024) ?? [];
      // An empty list, like a missing one, matches every peer.
      if (list.length > 0) {
        const peers = list.map((peer, j) => readK8sPeer(r, peer, join(join(p, peersField), j), namespace));
        if (peers.every((x): x is Peer => x !== undefined)) rule.peers = peers;
      }
    }
    if (o['ports'] !== undefined && o['ports'] !== null) {
      const ports = readK8sPorts(r, o['ports'], join(p, 'ports'));
      if (ports && ports.length > 0) rule.operations = [{ ports }];
    }
    out.push(rule);
  });
  return r.issues.length === before ? out : undefined;
}

/** Imports one already-loaded NetworkPolicy document; issues go to `r`. */
export function importKubernetesDocument(r: DocReader, doc: Json): AccessPolicy | undefined {
  r.fields(doc, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const meta = r.record(doc['metadata'], 'metadata');
  const spec = r.record(doc['spec'] ?? {}, 'spec');
  if (!meta || !spec) return undefined;
  const name = r.string(meta['name'], 'metadata.name', { max: 253 });
  const namespace = meta['namespace'] === undefined ? 'default' : r.string(meta['namespace'], 'metadata.namespace', { max: 63 });
  r.fields(spec, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress']);
  if (name === undefined || namespace === undefined) return undefined;
  const subjectReqs = readLabelSelector(r, spec['podSelector'], 'spec.podSelector', 'k8s.label.');
  let types: string[] | undefined;
  if (spec['policyTypes'] !== undefined && spec['policyTypes'] !== null) {
    types = r.strings(spec['policyTypes'], 'spec.policyTypes', (s) => (s === 'Ingress' || s === 'Egress' ? undefined : 'policyTypes entries are Ingress or Egress'));
  } else {
    types = spec['egress'] !== undefined && spec['egress'] !== null ? ['Ingress', 'Egress'] : ['Ingress'];
  }
  const ingress = readK8sRules(r, spec['ingress'], 'spec.ingress', 'from', namespace);
  const egress = readK8sRules(r, spec['egress'], 'spec.egress', 'to', namespace);
  if (r.failed || !subjectReqs || !types || !ingress || !egress) return undefined;
  return {
    kind: 'AccessPolicy',
    name,
    namespace,
    mode: 'enforce',
    action: 'ALLOW',
    subject: { selector: selectorOf([{ key: 'k8s.namespace', operator: 'Equals', values: [namespace] }, ...subjectReqs]) },
    ...(types.includes('Ingress') ? { ingress } : {}),
    ...(types.includes('Egress') ? { egress } : {}),
    origin: {
      ...(r.file === undefined ? {} : { file: r.file }),
      ...(r.document === undefined ? {} : { document: r.document }),
      importedFrom: 'networking.k8s.io/v1/NetworkPolicy',
    },
  };
}

/**
 * Imports every NetworkPolicy in a YAML/JSON text. Any problem in a document drops it and is
 * reported; other kinds are reported as `ERR_POLICY_KIND`.
 *
 * @example
 * const { policies, issues } = importKubernetesNetworkPolicy(text, { file: 'np.yaml' });
 */
export function importKubernetesNetworkPolicy(text: string, options: { file?: string } = {}): { policies: AccessPolicy[]; issues: PolicyIssue[] } {
  const loaded = loadYamlDocuments(text, options.file);
  const policies: AccessPolicy[] = [];
  const issues: PolicyIssue[] = [...loaded.issues];
  for (const { index, value } of loaded.documents) {
    const r = new DocReader(options.file, index);
    const doc = r.record(value, '');
    if (doc && (doc['apiVersion'] !== 'networking.k8s.io/v1' || doc['kind'] !== 'NetworkPolicy')) {
      r.issue('ERR_POLICY_KIND', 'kind', 'expected apiVersion networking.k8s.io/v1, kind NetworkPolicy');
    } else if (doc) {
      const p = importKubernetesDocument(r, doc);
      if (p && !r.failed) policies.push(p);
    }
    issues.push(...r.issues);
  }
  return { policies, issues };
}
