/**
 * Parsing and validation of policy documents (`ward.dev/v1alpha1` AccessPolicy, RuntimePolicy,
 * MutualTLSPolicy, Workload, PolicyTest) and, through the importers, Kubernetes NetworkPolicy and
 * Istio AuthorizationPolicy. Every problem is reported with file, document index, field path and
 * a stable code; a document with any problem produces nothing (no half-applied policy).
 */
import { IdentityError } from '../identity/errors.js';
import { EMPTY_SELECTOR } from '../identity/selector.js';
import { parseWorkloadIdentity } from '../identity/workload.js';
import { formatIssue, PolicyValidationError, type PolicyIssue } from './errors.js';
import {
  ACTIONS, MODES, NAME_RE, PROTOCOLS, SHA256_RE, cidrCheck, globCheck, readCondition, readOperation, readPeer, readSelector, spiffePatternCheck,
} from './fields.js';
import {
  API_VERSION,
  policyRef,
  type AccessPolicy,
  type AccessRule,
  type FileAccess,
  type FileRule,
  type MtlsMode,
  type MutualTlsPolicy,
  type Policy,
  type PolicyAction,
  type PolicyMode,
  type PolicyWorkload,
  type QueryInputs,
  type ProcessRule,
  type RuntimePolicy,
  type Subject,
} from './model.js';
import { DocReader, isRecord, join, type Json } from './reader.js';
import { loadYamlDocuments, type YamlLimits } from './yaml.js';
import { importKubernetesDocument } from './import/kubernetes.js';
import { importIstioDocument } from './import/istio.js';

/** A workload from a workloads file or a PolicyTest, with an optional short name (`x/a`). */
export interface NamedWorkload extends PolicyWorkload {
  readonly name?: string;
}

/** A `kind: PolicyTest` document, still unresolved (policy file references are strings). */
export interface PolicyTestDocument {
  readonly name: string;
  readonly file?: string;
  readonly document?: number;
  /** File/dir references (resolved by the caller) and inline policy documents. */
  readonly policyRefs: readonly string[];
  readonly inlinePolicies: readonly Policy[];
  readonly workloadRefs: readonly string[];
  readonly workloads: readonly NamedWorkload[];
  readonly cases: readonly PolicyTestCase[];
}

export interface PolicyTestCase extends QueryInputs {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly expect: 'allow' | 'deny';
  /** When set, the deciding policy must be this one (`namespace/name` or `name`). */
  readonly expectPolicy?: string;
  /** Where the case was written, for failure messages. */
  readonly path: string;
}

export interface ParsedDocuments {
  readonly policies: Policy[];
  readonly workloads: NamedWorkload[];
  readonly tests: PolicyTestDocument[];
  readonly issues: PolicyIssue[];
}

export interface ParseOptions {
  /** Name of the source (file path), used in issues. */
  readonly file?: string;
  readonly limits?: YamlLimits;
  /** Time given to attributes without `observedAt` (ms since epoch). */
  readonly now?: number;
  /** Istio root namespace: policies there apply mesh-wide (default `istio-system`). */
  readonly istioRootNamespace?: string;
}

function readList<T>(r: DocReader, value: unknown, path: string, item: (r: DocReader, v: unknown, p: string) => T | undefined): T[] | undefined {
  const items = r.list(value, path, 4096);
  if (!items) return undefined;
  const out: T[] = [];
  let ok = true;
  items.forEach((v, i) => {
    const parsed = item(r, v, join(path, i));
    if (parsed === undefined) ok = false;
    else out.push(parsed);
  });
  return ok ? out : undefined;
}

function readRule(r: DocReader, value: unknown, path: string, direction: 'ingress' | 'egress'): AccessRule | undefined {
  const obj = r.record(value, path);
  if (!obj) return undefined;
  const peersField = direction === 'ingress' ? 'from' : 'to';
  const opsField = direction === 'ingress' ? 'to' : 'operations';
  r.fields(obj, path, [peersField, opsField, 'when']);
  const before = r.issues.length;
  const rule: { -readonly [K in keyof AccessRule]: AccessRule[K] } = {};
  if (obj[peersField] !== undefined && obj[peersField] !== null) rule.peers = readList(r, obj[peersField], join(path, peersField), readPeer);
  if (obj[opsField] !== undefined && obj[opsField] !== null) rule.operations = readList(r, obj[opsField], join(path, opsField), readOperation);
  if (obj['when'] !== undefined && obj['when'] !== null) rule.when = readList(r, obj['when'], join(path, 'when'), readCondition);
  return r.issues.length === before ? rule : undefined;
}

function readSubject(r: DocReader, value: unknown, path: string): Subject | undefined {
  if (value === undefined || value === null) return { selector: EMPTY_SELECTOR };
  const obj = r.record(value, path);
  if (!obj) return undefined;
  r.fields(obj, path, ['selector', 'spiffeIds']);
  const selector = readSelector(r, obj['selector'], join(path, 'selector'));
  const spiffeIds = obj['spiffeIds'] === undefined ? undefined : r.strings(obj['spiffeIds'], join(path, 'spiffeIds'), spiffePatternCheck);
  if (!selector || (obj['spiffeIds'] !== undefined && !spiffeIds)) return undefined;
  return spiffeIds ? { selector, spiffeIds } : { selector };
}

function readMetadata(r: DocReader, doc: Json): { name: string; namespace?: string } | undefined {
  const meta = r.record(doc['metadata'], 'metadata');
  if (!meta) return undefined;
  const name = r.string(meta['name'], 'metadata.name', { max: 253 });
  if (name !== undefined && !NAME_RE.test(name)) r.issue('ERR_POLICY_VALUE', 'metadata.name', 'must be a lower-case DNS name (a-z, 0-9, -, .)');
  const namespace = meta['namespace'] === undefined ? undefined : r.string(meta['namespace'], 'metadata.namespace', { max: 63 });
  if (namespace !== undefined && !NAME_RE.test(namespace)) r.issue('ERR_POLICY_VALUE', 'metadata.namespace', 'must be a lower-case DNS label');
  if (name === undefined) return undefined;
  return namespace === undefined ? { name } : { name, namespace };
}

function readCommon(r: DocReader, spec: Json): { mode?: PolicyMode; action?: PolicyAction; subject?: Subject } {
  const mode = spec['mode'] === undefined ? 'enforce' : r.oneOf(spec['mode'], 'spec.mode', MODES);
  const action = spec['action'] === undefined ? 'ALLOW' : r.oneOf(spec['action'], 'spec.action', ACTIONS);
  const subject = readSubject(r, spec['subject'], 'spec.subject');
  return { ...(mode ? { mode } : {}), ...(action ? { action } : {}), ...(subject ? { subject } : {}) };
}

function readAccessPolicy(r: DocReader, doc: Json): AccessPolicy | undefined {
  const meta = readMetadata(r, doc);
  const spec = r.record(doc['spec'], 'spec');
  if (!spec) return undefined;
  r.fields(spec, 'spec', ['subject', 'action', 'mode', 'ingress', 'egress']);
  const { mode, action, subject } = readCommon(r, spec);
  const ingress = spec['ingress'] === undefined ? undefined : readList(r, spec['ingress'] ?? [], 'spec.ingress', (rr, v, p) => readRule(rr, v, p, 'ingress'));
  const egress = spec['egress'] === undefined ? undefined : readList(r, spec['egress'] ?? [], 'spec.egress', (rr, v, p) => readRule(rr, v, p, 'egress'));
  if (spec['ingress'] === undefined && spec['egress'] === undefined) r.issue('ERR_POLICY_SCHEMA', 'spec', 'an AccessPolicy needs ingress and/or egress (an empty list selects the direction and allows nothing)');
  if (r.failed || !meta || !mode || !action || !subject) return undefined;
  return {
    kind: 'AccessPolicy', ...meta, mode, action, subject,
    ...(ingress ? { ingress } : {}),
    ...(egress ? { egress } : {}),
    origin: origin(r),
  };
}

function readRuntimePolicy(r: DocReader, doc: Json): RuntimePolicy | undefined {
  const meta = readMetadata(r, doc);
  const spec = r.record(doc['spec'], 'spec');
  if (!spec) return undefined;
  r.fields(spec, 'spec', ['subject', 'action', 'mode', 'processes', 'files']);
  const { mode, action, subject } = readCommon(r, spec);
  const processes = spec['processes'] === undefined ? undefined : readList(r, spec['processes'] ?? [], 'spec.processes', (rr, v, p): ProcessRule | undefined => {
    const o = rr.record(v, p);
    if (!o) return undefined;
    rr.fields(o, p, ['paths', 'sha256']);
    const paths = rr.strings(o['paths'], join(p, 'paths'), globCheck);
    const sha = o['sha256'] === undefined ? undefined : rr.strings(o['sha256'], join(p, 'sha256'), (s) => (SHA256_RE.test(s) ? undefined : 'expected 64 lower-case hex digits'));
    if (!paths || (o['sha256'] !== undefined && !sha)) return undefined;
    return sha ? { paths, sha256: sha } : { paths };
  });
  const files = spec['files'] === undefined ? undefined : readList(r, spec['files'] ?? [], 'spec.files', (rr, v, p): FileRule | undefined => {
    const o = rr.record(v, p);
    if (!o) return undefined;
    rr.fields(o, p, ['paths', 'access']);
    const paths = rr.strings(o['paths'], join(p, 'paths'), globCheck);
    const access = o['access'] === undefined ? ['read', 'write'] : rr.strings(o['access'], join(p, 'access'), (s) => (s === 'read' || s === 'write' ? undefined : 'access must be read or write'));
    if (!paths || !access) return undefined;
    return { paths, access: access as FileAccess[] };
  });
  if (spec['processes'] === undefined && spec['files'] === undefined) r.issue('ERR_POLICY_SCHEMA', 'spec', 'a RuntimePolicy needs processes and/or files');
  if (r.failed || !meta || !mode || !action || !subject) return undefined;
  return { kind: 'RuntimePolicy', ...meta, mode, action, subject, ...(processes ? { processes } : {}), ...(files ? { files } : {}), origin: origin(r) };
}

function readMtlsPolicy(r: DocReader, doc: Json): MutualTlsPolicy | undefined {
  const meta = readMetadata(r, doc);
  const spec = r.record(doc['spec'], 'spec');
  if (!spec) return undefined;
  r.fields(spec, 'spec', ['subject', 'mode', 'mtls', 'portLevelMtls']);
  const { mode, subject } = readCommon(r, { ...spec, action: undefined });
  const modes: readonly MtlsMode[] = ['STRICT', 'PERMISSIVE'];
  const mtlsObj = spec['mtls'] === undefined ? {} : r.record(spec['mtls'], 'spec.mtls');
  const mtls = mtlsObj?.['mode'] === undefined ? 'STRICT' : r.oneOf(mtlsObj['mode'], 'spec.mtls.mode', modes);
  const portLevel: { port: number; mtls: MtlsMode }[] = [];
  if (spec['portLevelMtls'] !== undefined) {
    const pl = r.record(spec['portLevelMtls'], 'spec.portLevelMtls');
    for (const [port, v] of Object.entries(pl ?? {})) {
      const p = join('spec.portLevelMtls', port);
      const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
      if (!(n >= 1 && n <= 65535)) r.issue('ERR_POLICY_VALUE', p, 'key must be a port number');
      const o = r.record(v, p);
      const m = o ? r.oneOf(o['mode'], join(p, 'mode'), modes) : undefined;
      if (m && n >= 1 && n <= 65535) portLevel.push({ port: n, mtls: m });
    }
  }
  if (r.failed || !meta || !mode || !subject || !mtls) return undefined;
  return { kind: 'MutualTLSPolicy', ...meta, mode, subject, mtls, ...(portLevel.length ? { portLevel } : {}), origin: origin(r) };
}

function origin(r: DocReader): { file?: string; document?: number } {
  return { ...(r.file === undefined ? {} : { file: r.file }), ...(r.document === undefined ? {} : { document: r.document }) };
}

function readWorkload(r: DocReader, spec: unknown, path: string, name: string | undefined, now: number): NamedWorkload | undefined {
  const obj = r.record(spec, path);
  if (!obj) return undefined;
  r.fields(obj, path, ['spiffeId', 'attributes', 'ips', 'name']);
  let identity;
  try {
    identity = parseWorkloadIdentity({ spiffeId: obj['spiffeId'], attributes: obj['attributes'] ?? {} }, now, path);
  } catch (error) {
    if (error instanceof IdentityError) return r.issue('ERR_POLICY_WORKLOAD', String(error.details?.['path'] ?? path), error.message);
    throw error;
  }
  const ips = obj['ips'] === undefined ? undefined : r.strings(obj['ips'], join(path, 'ips'), (s) => (cidrCheck(s) || s.includes('/') ? `not an IP address: ${s}` : undefined));
  const alias = obj['name'] === undefined ? name : r.string(obj['name'], join(path, 'name'), { max: 253 });
  if (r.failed) return undefined;
  return { ...identity, ...(ips ? { ips } : {}), ...(alias ? { name: alias } : {}) };
}

function readPolicyTest(r: DocReader, doc: Json, options: ParseOptions): PolicyTestDocument | undefined {
  const meta = readMetadata(r, doc);
  const spec = r.record(doc['spec'], 'spec');
  if (!spec || !meta) return undefined;
  r.fields(spec, 'spec', ['policies', 'workloads', 'cases', 'reachability']);
  const policyRefs: string[] = [];
  const inlinePolicies: Policy[] = [];
  (spec['policies'] === undefined ? [] : r.list(spec['policies'], 'spec.policies') ?? []).forEach((item, i) => {
    const p = `spec.policies[${i}]`;
    if (typeof item === 'string') policyRefs.push(item);
    else if (isRecord(item)) {
      const sub = new DocReader(r.file, r.document);
      const parsed = readDocument(sub, item, options);
      for (const issue of sub.issues) r.issues.push({ ...issue, path: issue.path ? `${p}.${issue.path}` : p });
      if (parsed?.policies) inlinePolicies.push(...parsed.policies);
      else if (!sub.failed) r.issue('ERR_POLICY_TEST', p, 'inline document is not a policy');
    } else r.issue('ERR_POLICY_TEST', p, 'expected a file path or an inline policy document');
  });
  const workloadRefs: string[] = [];
  const workloads: NamedWorkload[] = [];
  (spec['workloads'] === undefined ? [] : r.list(spec['workloads'], 'spec.workloads') ?? []).forEach((item, i) => {
    if (typeof item === 'string') workloadRefs.push(item);
    else {
      const w = readWorkload(r, item, `spec.workloads[${i}]`, undefined, options.now ?? 0);
      if (w) workloads.push(w);
    }
  });
  const cases: PolicyTestCase[] = [];
  (spec['cases'] === undefined ? [] : r.list(spec['cases'], 'spec.cases') ?? []).forEach((item, i) => {
    const c = readCase(r, item, `spec.cases[${i}]`);
    if (c) cases.push(c);
  });
  (spec['reachability'] === undefined ? [] : r.list(spec['reachability'], 'spec.reachability') ?? []).forEach((item, i) => {
    cases.push(...readReachability(r, item, `spec.reachability[${i}]`));
  });
  if (cases.length === 0 && !r.failed) r.issue('ERR_POLICY_TEST', 'spec', 'a PolicyTest needs cases or reachability tables');
  if (r.failed) return undefined;
  return {
    name: meta.name,
    ...(r.file === undefined ? {} : { file: r.file }),
    ...(r.document === undefined ? {} : { document: r.document }),
    policyRefs, inlinePolicies, workloadRefs, workloads, cases,
  };
}

function readCase(r: DocReader, item: unknown, p: string): PolicyTestCase | undefined {
  const o = r.record(item, p);
  if (!o) return undefined;
  r.fields(o, p, ['name', 'from', 'to', 'port', 'protocol', 'http', 'process', 'file', 'expect', 'expectPolicy']);
  const before = r.issues.length;
  const name = o['name'] === undefined ? p : r.string(o['name'], join(p, 'name'));
  const runtime = o['process'] !== undefined || o['file'] !== undefined;
  const from = runtime && o['from'] === undefined ? '' : r.string(o['from'], join(p, 'from'));
  const to = r.string(o['to'], join(p, 'to'));
  const port = o['port'] === undefined ? undefined : r.integer(o['port'], join(p, 'port'), 1, 65535);
  if (!runtime && o['port'] === undefined) r.issue('ERR_POLICY_TEST', join(p, 'port'), 'a connection case needs a port');
  const protocol = o['protocol'] === undefined ? undefined : r.oneOf(o['protocol'], join(p, 'protocol'), PROTOCOLS);
  const expect = r.oneOf(o['expect'], join(p, 'expect'), ['allow', 'deny'] as const);
  const expectPolicy = o['expectPolicy'] === undefined ? undefined : r.string(o['expectPolicy'], join(p, 'expectPolicy'));
  let http: PolicyTestCase['http'];
  if (o['http'] !== undefined) {
    const h = r.record(o['http'], join(p, 'http'));
    if (h) {
      r.fields(h, join(p, 'http'), ['method', 'path', 'host', 'headers', 'claims']);
      const method = h['method'] === undefined ? 'GET' : r.string(h['method'], join(p, 'http.method'));
      const path = h['path'] === undefined ? '/' : r.string(h['path'], join(p, 'http.path'), { max: 8192 });
      const host = h['host'] === undefined ? undefined : r.string(h['host'], join(p, 'http.host'));
      const headers = h['headers'] === undefined ? undefined : r.record(h['headers'], join(p, 'http.headers'));
      const headerStrings: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers ?? {})) {
        const s = r.string(v, join(join(p, 'http.headers'), k), { nonEmpty: false });
        if (s !== undefined) headerStrings[k] = s;
      }
      const claims = h['claims'] === undefined ? undefined : r.record(h['claims'], join(p, 'http.claims'));
      if (method !== undefined && path !== undefined) {
        http = { method, path, ...(host ? { host } : {}), ...(headers ? { headers: headerStrings } : {}), ...(claims ? { claims } : {}) };
      }
    }
  }
  let proc: PolicyTestCase['process'];
  if (o['process'] !== undefined) {
    const pr = r.record(o['process'], join(p, 'process'));
    if (pr) {
      r.fields(pr, join(p, 'process'), ['path', 'sha256']);
      const path = r.string(pr['path'], join(p, 'process.path'), { max: 4096 });
      const sha256 = pr['sha256'] === undefined ? undefined : r.string(pr['sha256'], join(p, 'process.sha256'));
      if (path !== undefined) proc = sha256 ? { path, sha256 } : { path };
    }
  }
  let file: PolicyTestCase['file'];
  if (o['file'] !== undefined) {
    const fr = r.record(o['file'], join(p, 'file'));
    if (fr) {
      r.fields(fr, join(p, 'file'), ['path', 'access']);
      const path = r.string(fr['path'], join(p, 'file.path'), { max: 4096 });
      const access = r.oneOf(fr['access'], join(p, 'file.access'), ['read', 'write'] as const);
      if (path !== undefined && access) file = { path, access };
    }
  }
  if (r.issues.length !== before || name === undefined || from === undefined || to === undefined || !expect) return undefined;
  return {
    name, from, to, expect, path: p,
    ...(port === undefined ? {} : { port }),
    ...(protocol ? { protocol } : {}),
    ...(http ? { http } : {}),
    ...(proc ? { process: proc } : {}),
    ...(file ? { file } : {}),
    ...(expectPolicy ? { expectPolicy } : {}),
  };
}

/**
 * A Kubernetes e2e-style truth table: `to` names the columns; each row maps a source to one
 * character per column, `.` reachable, `X` blocked, `-` not checked (e.g. loopback, which the
 * Kubernetes suite ignores); spaces are ignored.
 */
function readReachability(r: DocReader, item: unknown, p: string): PolicyTestCase[] {
  const o = r.record(item, p);
  if (!o) return [];
  r.fields(o, p, ['name', 'port', 'protocol', 'to', 'rows']);
  const port = r.integer(o['port'], join(p, 'port'), 1, 65535);
  const protocol = o['protocol'] === undefined ? 'TCP' : r.oneOf(o['protocol'], join(p, 'protocol'), PROTOCOLS);
  const columns = r.strings(o['to'], join(p, 'to'));
  const rows = r.record(o['rows'], join(p, 'rows'));
  const title = o['name'] === undefined ? p : r.string(o['name'], join(p, 'name'));
  if (port === undefined || !protocol || !columns || !rows || title === undefined) return [];
  const out: PolicyTestCase[] = [];
  for (const [from, line] of Object.entries(rows)) {
    const rp = join(join(p, 'rows'), from);
    if (typeof line !== 'string') {
      r.issue('ERR_POLICY_TEST', rp, 'expected a string of . and X');
      continue;
    }
    const marks = line.replace(/\s+/g, '');
    if (!/^[.X-]*$/.test(marks) || marks.length !== columns.length) {
      r.issue('ERR_POLICY_TEST', rp, `expected ${columns.length} marks (. reachable, X blocked, - not checked), got ${JSON.stringify(line)}`);
      continue;
    }
    columns.forEach((to, i) => {
      if (marks[i] === '-') return;
      out.push({ name: `${title}: ${from} -> ${to}:${port}/${protocol}`, from, to, port, protocol, expect: marks[i] === '.' ? 'allow' : 'deny', path: rp });
    });
  }
  return out;
}

interface DocumentResult {
  policies?: Policy[];
  workloads?: NamedWorkload[];
  test?: PolicyTestDocument;
}

function readDocument(r: DocReader, doc: unknown, options: ParseOptions, depth = 0): DocumentResult | undefined {
  const d = r.record(doc, '');
  if (!d) return undefined;
  const apiVersion = d['apiVersion'];
  const kind = d['kind'];
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    return r.issue('ERR_POLICY_KIND', '', 'every document needs string apiVersion and kind');
  }
  if (kind === 'List' || kind.endsWith('List')) {
    if (depth > 0) return r.issue('ERR_POLICY_KIND', 'kind', 'nested lists are not supported');
    r.fields(d, '', ['apiVersion', 'kind', 'metadata', 'items']);
    const items = r.list(d['items'], 'items') ?? [];
    const out: Required<Omit<DocumentResult, 'test'>> = { policies: [], workloads: [] };
    items.forEach((item, i) => {
      const sub = new DocReader(r.file, r.document);
      const res = readDocument(sub, item, options, depth + 1);
      for (const issue of sub.issues) r.issues.push({ ...issue, path: issue.path ? `items[${i}].${issue.path}` : `items[${i}]` });
      if (res?.policies) out.policies.push(...res.policies);
      if (res?.workloads) out.workloads.push(...res.workloads);
      if (res?.test) r.issue('ERR_POLICY_KIND', `items[${i}]`, 'PolicyTest documents cannot be list items');
    });
    return out;
  }
  if (apiVersion === API_VERSION) {
    const allowedTop = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];
    switch (kind) {
      case 'AccessPolicy': {
        r.fields(d, '', allowedTop);
        const p = readAccessPolicy(r, d);
        return p ? { policies: [p] } : undefined;
      }
      case 'RuntimePolicy': {
        r.fields(d, '', allowedTop);
        const p = readRuntimePolicy(r, d);
        return p ? { policies: [p] } : undefined;
      }
      case 'MutualTLSPolicy': {
        r.fields(d, '', allowedTop);
        const p = readMtlsPolicy(r, d);
        return p ? { policies: [p] } : undefined;
      }
      case 'Workload': {
        r.fields(d, '', allowedTop);
        const meta = r.record(d['metadata'] ?? {}, 'metadata');
        const name = meta && typeof meta['name'] === 'string' ? meta['name'] : undefined;
        const w = readWorkload(r, d['spec'], 'spec', name, options.now ?? 0);
        return w ? { workloads: [w] } : undefined;
      }
      case 'PolicyTest': {
        r.fields(d, '', allowedTop);
        const t = readPolicyTest(r, d, options);
        return t ? { test: t } : undefined;
      }
      default:
        return r.issue('ERR_POLICY_KIND', 'kind', `unsupported kind ${JSON.stringify(kind)} for ${API_VERSION} (AccessPolicy, RuntimePolicy, MutualTLSPolicy, Workload, PolicyTest)`);
    }
  }
  if (apiVersion === 'networking.k8s.io/v1' && kind === 'NetworkPolicy') {
    const p = importKubernetesDocument(r, d);
    return p ? { policies: [p] } : undefined;
  }
  if ((apiVersion === 'security.istio.io/v1' || apiVersion === 'security.istio.io/v1beta1') && kind === 'AuthorizationPolicy') {
    const p = importIstioDocument(r, d, options.istioRootNamespace ?? 'istio-system');
    return p ? { policies: [p] } : undefined;
  }
  return r.issue('ERR_POLICY_KIND', 'apiVersion', `unsupported document ${JSON.stringify(apiVersion)}/${JSON.stringify(kind)}`);
}

/**
 * Parses every document of one YAML/JSON text. Returns what parsed and every issue; a document
 * with any issue contributes nothing. Kubernetes NetworkPolicy and Istio AuthorizationPolicy
 * documents are imported on the way.
 *
 * @example
 * const { policies, issues } = parsePolicyDocuments(text, { file: 'payments.yaml' });
 */
export function parsePolicyDocuments(text: string, options: ParseOptions = {}): ParsedDocuments {
  const { documents, issues } = loadYamlDocuments(text, options.file, options.limits);
  const out: ParsedDocuments = { policies: [], workloads: [], tests: [], issues: [...issues] };
  for (const { index, value } of documents) {
    const r = new DocReader(options.file, index);
    const res = readDocument(r, value, options);
    out.issues.push(...r.issues);
    if (r.failed || !res) continue;
    if (res.policies) out.policies.push(...res.policies);
    if (res.workloads) out.workloads.push(...res.workloads);
    if (res.test) out.tests.push(res.test);
  }
  return out;
}

/** One input file for the multi-file entry points. */
export interface PolicySource {
  readonly file: string;
  readonly text: string;
}

/**
 * Validates a set of files as one unit: parse problems plus cross-document ones (duplicate
 * policy names, duplicate workload SPIFFE IDs). Returns every issue; empty means valid.
 *
 * @example
 * const issues = validatePolicies([{ file: 'a.yaml', text }]);
 */
export function validatePolicies(sources: readonly PolicySource[], options: Omit<ParseOptions, 'file'> = {}): PolicyIssue[] {
  return parsePolicySources(sources, options).issues;
}

/** Parses several files and checks cross-document rules; see {@link validatePolicies}. */
export function parsePolicySources(sources: readonly PolicySource[], options: Omit<ParseOptions, 'file'> = {}): ParsedDocuments {
  const all: ParsedDocuments = { policies: [], workloads: [], tests: [], issues: [] };
  for (const s of sources) {
    const res = parsePolicyDocuments(s.text, { ...options, file: s.file });
    all.policies.push(...res.policies);
    all.workloads.push(...res.workloads);
    all.tests.push(...res.tests);
    all.issues.push(...res.issues);
  }
  all.issues.push(...crossChecks(all.policies, all.workloads));
  return all;
}

/** Duplicate policy names (per kind) and duplicate workload SPIFFE IDs/names. */
export function crossChecks(policies: readonly Policy[], workloads: readonly NamedWorkload[]): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const seen = new Map<string, Policy>();
  for (const p of policies) {
    const key = `${p.kind}/${policyRef(p)}`;
    const prev = seen.get(key);
    if (prev) {
      issues.push({
        code: 'ERR_POLICY_DUPLICATE',
        message: `${key} is also defined at ${prev.origin?.file ?? '<input>'}#${prev.origin?.document ?? '?'}`,
        ...(p.origin?.file === undefined ? {} : { file: p.origin.file }),
        ...(p.origin?.document === undefined ? {} : { document: p.origin.document }),
        path: 'metadata.name',
      });
    } else seen.set(key, p);
  }
  const ids = new Set<string>();
  const names = new Set<string>();
  for (const w of workloads) {
    if (ids.has(w.spiffeId)) issues.push({ code: 'ERR_POLICY_WORKLOAD', message: `workload ${w.spiffeId} defined twice`, path: 'spec.spiffeId' });
    ids.add(w.spiffeId);
    if (w.name !== undefined) {
      if (names.has(w.name)) issues.push({ code: 'ERR_POLICY_WORKLOAD', message: `workload name ${w.name} used twice`, path: 'metadata.name' });
      names.add(w.name);
    }
  }
  return issues;
}

/** Throws {@link PolicyValidationError} carrying every issue when there is any. */
export function assertNoIssues(issues: readonly PolicyIssue[]): void {
  if (issues.length > 0) throw new PolicyValidationError(issues);
}

export { formatIssue };
