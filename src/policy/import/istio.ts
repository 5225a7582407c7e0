/**
 * Import of Istio `security.istio.io/v1` (and v1beta1) AuthorizationPolicy into a Ward
 * AccessPolicy (ingress) with the same meaning:
 *
 * - `selector.matchLabels` + the policy namespace become the subject; a policy in the root
 *   namespace (default `istio-system`) without selector applies mesh-wide;
 * - `action` ALLOW/DENY/AUDIT map one to one; a policy without rules keeps Istio's meaning
 *   (ALLOW: allow nothing; DENY/AUDIT: match nothing); `rules: [{}]` matches everything;
 * - `source.principals` (`<trust-domain>/ns/<ns>/sa/<sa>`) become SPIFFE ID patterns;
 *   `requestPrincipals`, `namespaces`, `ipBlocks` keep their meaning; `remoteIpBlocks` equal
 *   `ipBlocks` because Ward trusts no X-Forwarded-For hops (Istio's `numTrustedProxies: 0`);
 * - `operation` fields and `when` conditions map field for field.
 *
 * CUSTOM action, `provider`, `targetRef(s)` and unknown `when` keys are rejected with
 * `ERR_POLICY_IMPORT_UNSUPPORTED`: importing them partially would change their meaning.
 */
import type { SelectorRequirement } from '../../identity/selector.js';
import { selectorOf } from '../../identity/selector.js';
import { ACTIONS, CONDITION_KEYS, readCondition, readIpBlocks, readOperation, splitConditionKey, patternCheck } from '../fields.js';
import type { AccessPolicy, AccessRule, Condition, Operation, Peer, PolicyAction } from '../model.js';
import { DocReader, join, type Json } from '../reader.js';
import { loadYamlDocuments } from '../yaml.js';
import type { PolicyIssue } from '../errors.js';
import { readLabelSelector } from './kubernetes.js';

const SOURCE_FIELDS = ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'];
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];

/** Istio principal (`td/ns/a/sa/b`, `*`, `prefix*`, `*suffix`) to a Ward SPIFFE ID pattern. */
export function principalToSpiffePattern(principal: string): string {
  if (principal.startsWith('*')) return principal;
  return `spiffe://${principal}`;
}

function readSource(r: DocReader, value: unknown, path: string): Peer | undefined {
  const o = r.record(value, path);
  if (!o) return undefined;
  r.fields(o, path, SOURCE_FIELDS);
  const before = r.issues.length;
  const peer: { -readonly [K in keyof Peer]: Peer[K] } = {};
  const principals = (f: string): string[] | undefined => {
    const v = r.strings(o[f], join(path, f), patternCheck());
    return v?.map(principalToSpiffePattern);
  };
  if (o['principals'] !== undefined) peer.spiffeIds = principals('principals');
  if (o['notPrincipals'] !== undefined) peer.notSpiffeIds = principals('notPrincipals');
  for (const [from, to] of [['requestPrincipals', 'requestPrincipals'], ['notRequestPrincipals', 'notRequestPrincipals'], ['namespaces', 'namespaces'], ['notNamespaces', 'notNamespaces']] as const) {
    if (o[from] !== undefined) peer[to] = r.strings(o[from], join(path, from), patternCheck());
  }
  const blocks = [...(o['ipBlocks'] === undefined ? [] : [['ipBlocks', 'ipBlocks'] as const]), ...(o['remoteIpBlocks'] === undefined ? [] : [['remoteIpBlocks', 'ipBlocks'] as const])];
  const notBlocks = [...(o['notIpBlocks'] === undefined ? [] : [['notIpBlocks', 'notIpBlocks'] as const]), ...(o['notRemoteIpBlocks'] === undefined ? [] : [['notRemoteIpBlocks', 'notIpBlocks'] as const])];
  if (blocks.length === 2) r.issue('ERR_POLICY_IMPORT_UNSUPPORTED', join(path, 'remoteIpBlocks'), 'ipBlocks and remoteIpBlocks together cannot be expressed (Ward sees one peer address)');
  if (notBlocks.length === 2) r.issue('ERR_POLICY_IMPORT_UNSUPPORTED', join(path, 'notRemoteIpBlocks'), 'notIpBlocks and notRemoteIpBlocks together cannot be expressed');
  for (const [from, to] of [...blocks, ...notBlocks]) {
    const list = r.strings(o[from], join(path, from));
    if (list) peer[to] = readIpBlocks(r, list, join(path, from));
  }
  return r.issues.length === before ? peer : undefined;
}

function readIstioOperation(r: DocReader, value: unknown, path: string): Operation | undefined {
  const o = r.record(value, path);
  if (!o) return undefined;
  r.fields(o, path, OPERATION_FIELDS);
  const ward: Json = {};
  for (const f of OPERATION_FIELDS) if (o[f] !== undefined) ward[f] = o[f];
  for (const f of ['ports', 'notPorts']) {
    // Istio ports are strings of single port numbers.
    if (Array.isArray(ward[f])) ward[f] = (ward[f] as unknown[]).map((p) => (typeof p === 'string' && /^[0-9]{1,5}$/.test(p) ? Number(p) : p));
  }
  return readOperation(r, ward, path);
}

function readIstioCondition(r: DocReader, value: unknown, path: string): Condition | undefined {
  const o = r.record(value, path);
  if (!o) return undefined;
  const key = o['key'];
  if (typeof key === 'string') {
    const split = splitConditionKey(key);
    if (!split || !CONDITION_KEYS[split.base]) {
      return r.issue('ERR_POLICY_IMPORT_UNSUPPORTED', join(path, 'key'), `condition key ${JSON.stringify(key)} has no Ward equivalent`);
    }
  }
  const cond = readCondition(r, value, path);
  if (cond && cond.key === 'source.principal') {
    return { key: cond.key, ...(cond.values ? { values: cond.values.map(principalToSpiffePattern) } : {}), ...(cond.notValues ? { notValues: cond.notValues.map(principalToSpiffePattern) } : {}) };
  }
  return cond;
}

function readIstioRule(r: DocReader, value: unknown, path: string): AccessRule | undefined {
  const o = r.record(value, path);
  if (!o) return undefined;
  r.fields(o, path, ['from', 'to', 'when']);
  const before = r.issues.length;
  const rule: { -readonly [K in keyof AccessRule]: AccessRule[K] } = {};
  if (o['from'] !== undefined && o['from'] !== null) {
    const items = r.list(o['from'], join(path, 'from'), 1024) ?? [];
    const peers = items.map((item, i) => {
      const p = join(join(path, 'from'), i);
      const f = r.record(item, p);
      if (!f) return undefined;
      r.fields(f, p, ['source']);
      return readSource(r, f['source'] ?? {}, join(p, 'source'));
    });
    if (items.length > 0) rule.peers = peers.filter((x): x is Peer => x !== undefined);
  }
  if (o['to'] !== undefined && o['to'] !== null) {
    const items = r.list(o['to'], join(path, 'to'), 1024) ?? [];
    const ops = items.map((item, i) => {
      const p = join(join(path, 'to'), i);
      const t = r.record(item, p);
      if (!t) return undefined;
      r.fields(t, p, ['operation']);
      return readIstioOperation(r, t['operation'] ?? {}, join(p, 'operation'));
    });
    if (items.length > 0) rule.operations = ops.filter((x): x is Operation => x !== undefined);
  }
  if (o['when'] !== undefined && o['when'] !== null) {
    const items = r.list(o['when'], join(path, 'when'), 1024) ?? [];
    rule.when = items.map((item, i) => readIstioCondition(r, item, join(join(path, 'when'), i))).filter((x): x is Condition => x !== undefined);
  }
  return r.issues.length === before ? rule : undefined;
}

/** Imports one already-loaded AuthorizationPolicy document; issues go to `r`. */
export function importIstioDocument(r: DocReader, doc: Json, rootNamespace = 'istio-system'): AccessPolicy | undefined {
  r.fields(doc, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const meta = r.record(doc['metadata'], 'metadata');
  const spec = doc['spec'] === undefined || doc['spec'] === null ? {} : r.record(doc['spec'], 'spec');
  if (!meta || !spec) return undefined;
  const name = r.string(meta['name'], 'metadata.name', { max: 253 });
  const namespace = meta['namespace'] === undefined ? 'default' : r.string(meta['namespace'], 'metadata.namespace', { max: 63 });
  r.fields(spec, 'spec', ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules']);
  for (const f of ['targetRef', 'targetRefs', 'provider']) {
    if (spec[f] !== undefined) r.issue('ERR_POLICY_IMPORT_UNSUPPORTED', join('spec', f), `${f} has no Ward equivalent (Ward selects workloads by identity attributes)`);
  }
  let action: PolicyAction | undefined = 'ALLOW';
  if (spec['action'] === 'CUSTOM') {
    r.issue('ERR_POLICY_IMPORT_UNSUPPORTED', 'spec.action', 'CUSTOM (external authorizer) has no Ward equivalent');
  } else if (spec['action'] !== undefined) action = r.oneOf(spec['action'], 'spec.action', ACTIONS);
  let labels: SelectorRequirement[] | undefined = [];
  if (spec['selector'] !== undefined && spec['selector'] !== null) {
    const sel = r.record(spec['selector'], 'spec.selector');
    if (sel) {
      r.fields(sel, 'spec.selector', ['matchLabels']);
      labels = readLabelSelector(r, { matchLabels: sel['matchLabels'] }, 'spec.selector', 'k8s.label.');
    }
  }
  const rules: AccessRule[] = [];
  if (spec['rules'] !== undefined && spec['rules'] !== null) {
    (r.list(spec['rules'], 'spec.rules', 4096) ?? []).forEach((rule, i) => {
      const parsed = readIstioRule(r, rule, join('spec.rules', i));
      if (parsed) rules.push(parsed);
    });
  }
  if (r.failed || name === undefined || namespace === undefined || !action || !labels) return undefined;
  const meshWide = namespace === rootNamespace;
  const reqs: SelectorRequirement[] = meshWide ? labels : [{ key: 'k8s.namespace', operator: 'Equals', values: [namespace] }, ...labels];
  return {
    kind: 'AccessPolicy',
    name,
    namespace,
    mode: 'enforce',
    action,
    subject: { selector: selectorOf(reqs) },
    ingress: rules,
    origin: {
      ...(r.file === undefined ? {} : { file: r.file }),
      ...(r.document === undefined ? {} : { document: r.document }),
      importedFrom: 'security.istio.io/v1/AuthorizationPolicy',
    },
  };
}

/**
 * Imports every AuthorizationPolicy in a YAML/JSON text.
 *
 * @example
 * const { policies, issues } = importIstioAuthorizationPolicy(text, { file: 'authz.yaml' });
 */
export function importIstioAuthorizationPolicy(text: string, options: { file?: string; rootNamespace?: string } = {}): { policies: AccessPolicy[]; issues: PolicyIssue[] } {
  const loaded = loadYamlDocuments(text, options.file);
  const policies: AccessPolicy[] = [];
  const issues: PolicyIssue[] = [...loaded.issues];
  for (const { index, value } of loaded.documents) {
    const r = new DocReader(options.file, index);
    const doc = r.record(value, '');
    if (doc && (!['security.istio.io/v1', 'security.istio.io/v1beta1'].includes(String(doc['apiVersion'])) || doc['kind'] !== 'AuthorizationPolicy')) {
      r.issue('ERR_POLICY_KIND', 'kind', 'expected apiVersion security.istio.io/v1, kind AuthorizationPolicy');
    } else if (doc) {
      const p = importIstioDocument(r, doc, options.rootNamespace);
      if (p && !r.failed) policies.push(p);
    }
    issues.push(...r.issues);
  }
  return { policies, issues };
}
