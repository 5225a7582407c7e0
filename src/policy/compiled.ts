/**
 * Compiled matchers: policy rules turned into closures once, so evaluation never parses. A
 * rule matches when one peer, one operation and every condition match (Istio semantics); when
 * HTTP fields must be ignored (a decision taken before or without HTTP), they count as matching
 * and the caller decides, per action, whether the rule may be used at all.
 */
import type { AttributeView } from '../identity/selector.js';
import { compileSelector, selectorAnchor, type SelectorPredicate } from '../identity/selector.js';
import { splitConditionKey, CONDITION_KEYS } from './fields.js';
import { anyOf, cidrContains, compileGlob, compilePathPattern, compileStringPattern, parseCidr, portInRanges, type Cidr, type StringMatcher } from './match.js';
import type { AccessRule, Condition, IpBlock, Operation, Peer, Policy, PolicyAction, PolicyMode, FileAccess, MtlsMode, Subject } from './model.js';
import { ruleOutcome, type RuleOutcome } from './verdicts.js';

/** What rules know about the other end of a connection. Built once per known workload. */
export interface PeerInfo {
  readonly authenticated: boolean;
  /** Full SPIFFE ID, or '' when unauthenticated / an address. */
  readonly spiffeId: string;
  /** The SPIFFE ID without `spiffe://` (Istio's principal), or ''. */
  readonly principal: string;
  /** `k8s.namespace` of a known workload, or '' . */
  readonly namespace: string;
  readonly attrs: AttributeView;
  /** An identity (known or derived from its SPIFFE ID), not a bare address. */
  readonly known: boolean;
  readonly ip: Uint8Array | undefined;
  /**
   * Remembered outcomes of the set's peer selectors for this peer's attributes (ADR 0024). A
   * peer view is rebuilt whenever its attributes change, so the memo can never be stale.
   */
  readonly memo?: SelectorMemo;
}

/**
 * Per-peer memo of selector outcomes: 2 bits per interned selector id (0 unknown, 1 false,
 * 2 true), allocated on first use. Ids come from the {@link SelectorTable} of one compiled set.
 */
export class SelectorMemo {
  #bits: Uint32Array | undefined;
  constructor(readonly size: number) {}

  /** The outcome of selector `id` on `attrs`, computing and remembering it on first use. */
  test(id: number, predicate: SelectorPredicate, attrs: AttributeView): boolean {
    let bits = this.#bits;
    if (bits === undefined) {
      if (id >= this.size) return predicate(attrs);
      bits = this.#bits = new Uint32Array((this.size + 15) >>> 4);
    } else if (id >= this.size) return predicate(attrs);
    const word = id >>> 4;
    const shift = (id & 15) << 1;
    const v = (bits[word]! >>> shift) & 3;
    if (v !== 0) return v === 2;
    const r = predicate(attrs);
    bits[word] = bits[word]! | ((r ? 2 : 1) << shift);
    return r;
  }
}

/**
 * Interns the peer selectors of a policy set: identical selectors (same requirements in the same
 * order) share one id and one compiled predicate, so a peer's memo holds one outcome per distinct
 * selector however many policies repeat it (`vuln.critical > 2` in every namespace).
 */
export class SelectorTable {
  readonly #ids = new Map<string, { id: number; predicate: SelectorPredicate }>();

  get size(): number {
    return this.#ids.size;
  }

  intern(selector: Subject['selector']): { id: number; predicate: SelectorPredicate } {
    const key = JSON.stringify(selector.requirements.map((r) => [r.key, r.operator, r.values]));
    let known = this.#ids.get(key);
    if (known === undefined) this.#ids.set(key, (known = { id: this.#ids.size, predicate: compileSelector(selector) }));
    return known;
  }
}

/** What rules know about an HTTP request (already normalised). */
export interface RequestInfo {
  readonly method: string;
  readonly path: string;
  /** Lower-cased host, and the same without `:port`. */
  readonly host: string;
  readonly hostNoPort: string;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly claims: Readonly<Record<string, unknown>> | undefined;
  /** `iss/sub` of the validated JWT, or '' when none. */
  readonly requestPrincipal: string;
}

export interface MatchInput {
  readonly peer: PeerInfo;
  readonly port: number;
  readonly protocol: string;
  readonly req: RequestInfo | undefined;
  /** HTTP-only fields count as matching (decision before or without HTTP). */
  readonly ignoreHttp: boolean;
}

type Check = (m: MatchInput) => boolean;

const TRUE: Check = () => true;

/** The check of an absent part (no `from`, no `to`, no `when`): always matches. */
export const MATCH_ALL: (m: MatchInput) => boolean = TRUE;

function all(checks: Check[]): Check {
  if (checks.length === 0) return TRUE;
  if (checks.length === 1) return checks[0]!;
  const n = checks.length;
  return (m) => {
    for (let i = 0; i < n; i++) if (!checks[i]!(m)) return false;
    return true;
  };
}

function some(checks: Check[]): Check {
  const n = checks.length;
  return (m) => {
    for (let i = 0; i < n; i++) if (checks[i]!(m)) return true;
    return false;
  };
}

/** `*` matches any non-empty value; a missing value ('') matches no positive pattern. */
function nonEmpty(matcher: StringMatcher): StringMatcher {
  return (v) => v !== '' && matcher(v);
}

export function spiffeMatcher(patterns: readonly string[]): StringMatcher {
  return anyOf(patterns.map((p) => nonEmpty(compileStringPattern(p.startsWith('spiffe://') ? p.slice('spiffe://'.length) : p))));
}

function compileBlocks(blocks: readonly IpBlock[]): (ip: Uint8Array) => boolean {
  const compiled = blocks.map((b) => ({ cidr: parseCidr(b.cidr), except: b.except.map(parseCidr) }));
  return (ip) => {
    for (const b of compiled) {
      if (cidrContains(b.cidr, ip) && !b.except.some((e: Cidr) => cidrContains(e, ip))) return true;
    }
    return false;
  };
}

function httpCheck(check: (req: RequestInfo, m: MatchInput) => boolean): Check {
  return (m) => (m.req === undefined ? m.ignoreHttp : check(m.req, m));
}

export function compilePeer(peer: Peer, selectors?: SelectorTable): { check: Check; http: boolean; address: boolean } {
  const checks: Check[] = [];
  let http = false;
  if (peer.unauthenticated === true) checks.push((m) => !m.peer.authenticated);
  if (peer.unauthenticated === false) checks.push((m) => m.peer.authenticated);
  if (peer.spiffeIds) {
    const f = spiffeMatcher(peer.spiffeIds);
    checks.push((m) => f(m.peer.principal));
  }
  if (peer.notSpiffeIds) {
    const f = spiffeMatcher(peer.notSpiffeIds);
    checks.push((m) => !f(m.peer.principal));
  }
  if (peer.namespaces) {
    const f = anyOf(peer.namespaces.map((p) => nonEmpty(compileStringPattern(p))));
    checks.push((m) => f(m.peer.namespace));
  }
  if (peer.notNamespaces) {
    const f = anyOf(peer.notNamespaces.map((p) => nonEmpty(compileStringPattern(p))));
    checks.push((m) => !f(m.peer.namespace));
  }
  if (peer.selector) {
    if (selectors) {
      const { id, predicate } = selectors.intern(peer.selector);
      checks.push((m) => {
        const p = m.peer;
        if (!p.known || !p.authenticated) return false;
        const memo = p.memo;
        return memo === undefined ? predicate(p.attrs) : memo.test(id, predicate, p.attrs);
      });
    } else {
      const f = compileSelector(peer.selector);
      checks.push((m) => m.peer.known && m.peer.authenticated && f(m.peer.attrs));
    }
  }
  if (peer.ipBlocks) {
    const f = compileBlocks(peer.ipBlocks);
    checks.push((m) => m.peer.ip !== undefined && f(m.peer.ip));
  }
  if (peer.notIpBlocks) {
    const f = compileBlocks(peer.notIpBlocks);
    checks.push((m) => m.peer.ip === undefined || !f(m.peer.ip));
  }
  if (peer.requestPrincipals) {
    http = true;
    const f = anyOf(peer.requestPrincipals.map((p) => nonEmpty(compileStringPattern(p))));
    checks.push(httpCheck((req) => f(req.requestPrincipal)));
  }
  if (peer.notRequestPrincipals) {
    http = true;
    const f = anyOf(peer.notRequestPrincipals.map((p) => nonEmpty(compileStringPattern(p))));
    checks.push(httpCheck((req) => !f(req.requestPrincipal)));
  }
  return { check: all(checks), http, address: peer.ipBlocks !== undefined || peer.notIpBlocks !== undefined };
}

function hostMatcher(patterns: readonly string[]): (req: RequestInfo) => boolean {
  const f = anyOf(patterns.map((p) => compileStringPattern(p, true)));
  const withPort = patterns.map((p) => p.includes(':'));
  const anyWithPort = withPort.some(Boolean);
  // A pattern without a port also matches `host:port` (the Host header may carry the port).
  return anyWithPort ? (req) => f(req.host) || f(req.hostNoPort) : (req) => f(req.hostNoPort);
}

export function compileOperation(op: Operation): { check: Check; http: boolean } {
  const checks: Check[] = [];
  let http = false;
  if (op.ports) {
    const ranges = op.ports;
    checks.push((m) => portInRanges(ranges, m.port, m.protocol));
  }
  if (op.notPorts) {
    const ranges = op.notPorts;
    checks.push((m) => !portInRanges(ranges, m.port, m.protocol));
  }
  if (op.methods) {
    http = true;
    const set = new Set(op.methods);
    const star = set.has('*');
    checks.push(httpCheck((req) => star || set.has(req.method)));
  }
  if (op.notMethods) {
    http = true;
    const set = new Set(op.notMethods);
    const star = set.has('*');
    checks.push(httpCheck((req) => !(star || set.has(req.method))));
  }
  if (op.paths) {
    http = true;
    const f = anyOf(op.paths.map(compilePathPattern));
    checks.push(httpCheck((req) => f(req.path)));
  }
  if (op.notPaths) {
    http = true;
    const f = anyOf(op.notPaths.map(compilePathPattern));
    checks.push(httpCheck((req) => !f(req.path)));
  }
  if (op.hosts) {
    http = true;
    const f = hostMatcher(op.hosts);
    checks.push(httpCheck((req) => f(req)));
  }
  if (op.notHosts) {
    http = true;
    const f = hostMatcher(op.notHosts);
    checks.push(httpCheck((req) => !f(req)));
  }
  if (op.headers) {
    http = true;
    for (const h of op.headers) {
      const f = anyOf(h.values.map((v) => compileStringPattern(v)));
      const name = h.name;
      checks.push(httpCheck((req) => {
        const v = req.headers[name];
        return v !== undefined && f(v);
      }));
    }
  }
  return { check: all(checks), http };
}

/** Reads a claim by path; a list claim yields its string members, scalars their string form. */
function claimValues(claims: Readonly<Record<string, unknown>> | undefined, names: readonly string[]): string[] {
  let v: unknown = claims;
  for (const n of names) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, n)) return [];
    v = (v as Record<string, unknown>)[n];
  }
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

export function compileCondition(cond: Condition): { check: Check; http: boolean; address: boolean } {
  const split = splitConditionKey(cond.key)!;
  const meta = CONDITION_KEYS[split.base]!;
  // values: one must match; notValues: none may match. Both given: both hold.
  let get: (m: MatchInput) => readonly string[];
  let match: (patterns: readonly string[]) => (v: string) => boolean;
  const strings = (patterns: readonly string[]): StringMatcher => anyOf(patterns.map((p) => compileStringPattern(p)));
  switch (split.base) {
    case 'request.headers': {
      const name = split.names[0]!.toLowerCase();
      get = (m) => {
        const v = m.req!.headers[name];
        return v === undefined ? [] : [v];
      };
      match = strings;
      break;
    }
    case 'request.auth.principal':
      get = (m) => (m.req!.requestPrincipal === '' ? [] : [m.req!.requestPrincipal]);
      match = strings;
      break;
    case 'request.auth.audiences':
      get = (m) => claimValues(m.req!.claims, ['aud']);
      match = strings;
      break;
    case 'request.auth.presenter':
      get = (m) => claimValues(m.req!.claims, ['azp']);
      match = strings;
      break;
    case 'request.auth.claims':
      get = (m) => claimValues(m.req!.claims, split.names);
      match = strings;
      break;
    case 'source.ip':
    case 'remote.ip':
      // IPs are matched on bytes (see the `ip` branch below), never as strings.
      get = () => [];
      match = strings;
      break;
    case 'source.namespace':
      get = (m) => (m.peer.namespace === '' ? [] : [m.peer.namespace]);
      match = strings;
      break;
    case 'source.principal':
      get = (m) => (m.peer.principal === '' ? [] : [m.peer.principal]);
      match = (patterns) => spiffeMatcher(patterns);
      break;
    case 'destination.port':
      get = (m) => [String(m.port)];
      match = (patterns) => {
        const set = new Set(patterns);
        return (v) => set.has(v);
      };
      break;
    default:
      throw new RangeError(`unsupported condition key ${cond.key}`);
  }
  let check: Check;
  if (meta.kind === 'ip') {
    const yes = cond.values ? compileBlocks(cond.values.map((cidr) => ({ cidr, except: [] }))) : undefined;
    const no = cond.notValues ? compileBlocks(cond.notValues.map((cidr) => ({ cidr, except: [] }))) : undefined;
    check = (m) => {
      const ip = m.peer.ip;
      if (yes && (ip === undefined || !yes(ip))) return false;
      if (no && ip !== undefined && no(ip)) return false;
      return true;
    };
  } else {
    const yes = cond.values ? match(cond.values) : undefined;
    const no = cond.notValues ? match(cond.notValues) : undefined;
    check = (m) => {
      const values = get(m);
      if (yes && !values.some(yes)) return false;
      if (no && values.some(no)) return false;
      return true;
    };
  }
  return { check: meta.http ? httpCheck((_req, m) => check(m)) : check, http: meta.http, address: meta.kind === 'ip' };
}

export interface CompiledRule {
  readonly index: number;
  readonly peers: Check;
  readonly operations: Check;
  readonly when: Check;
  /** The rule uses HTTP-only fields (methods, paths, hosts, headers, request principals, request.* keys). */
  readonly http: boolean;
  /** The rule looks at the peer's address (`ipBlocks`, `notIpBlocks`, `source.ip`/`remote.ip` conditions). */
  readonly address: boolean;
  /**
   * Set when the rule's peers are exactly one selector (the common shape): the hot path then
   * checks it through the peer's selector memo without calling {@link peers}. Same meaning.
   */
  readonly peerSelector?: { readonly id: number; readonly predicate: SelectorPredicate };
}

export function compileRule(rule: AccessRule, index: number, selectors?: SelectorTable): CompiledRule {
  let http = false;
  let address = false;
  const part = (items: readonly { check: Check; http: boolean; address?: boolean }[] | undefined): Check => {
    if (items === undefined) return TRUE;
    for (const i of items) {
      http ||= i.http;
      address ||= i.address === true;
    }
    return items.length === 1 ? items[0]!.check : some(items.map((i) => i.check));
  };
  const peers = part(rule.peers?.map((p) => compilePeer(p, selectors)));
  const operations = part(rule.operations?.map(compileOperation));
  const conds = rule.when?.map(compileCondition) ?? [];
  for (const c of conds) {
    http ||= c.http;
    address ||= c.address;
  }
  const only = rule.peers?.length === 1 ? rule.peers[0]! : undefined;
  const peerSelector = selectors && only?.selector && Object.keys(only).every((k) => k === 'selector' || (only as Record<string, unknown>)[k] === undefined)
    ? selectors.intern(only.selector)
    : undefined;
  return { index, peers, operations, when: all(conds.map((c) => c.check)), http, address, ...(peerSelector ? { peerSelector } : {}) };
}

export interface CompiledRuntimeRule {
  readonly index: number;
  readonly match: (path: string, sha256: string | undefined, access: FileAccess | undefined) => boolean;
}

export interface CompiledPolicy {
  /** Position in the input, for stable ordering. */
  readonly order: number;
  readonly ref: string;
  readonly kind: Policy['kind'];
  readonly action: PolicyAction;
  readonly mode: PolicyMode;
  readonly source: Policy;
  readonly subject: (spiffeId: string, principal: string, attrs: AttributeView) => boolean;
  /** For the subject index: every selected workload has `anchor.key` in `anchor.values`. */
  readonly anchor: { key: string; values: readonly string[] } | undefined;
  readonly specificity: number;
  readonly ingress: readonly CompiledRule[] | undefined;
  readonly egress: readonly CompiledRule[] | undefined;
  readonly processes: readonly CompiledRuntimeRule[] | undefined;
  readonly files: readonly CompiledRuntimeRule[] | undefined;
  readonly mtls: ((port: number) => MtlsMode) | undefined;
  /** Per rule index (any direction or runtime list): the shared hit, verdicts and audit list. */
  readonly outcomes: readonly RuleOutcome[];
}

function compileSubject(subject: Subject): CompiledPolicy['subject'] {
  const sel: SelectorPredicate = compileSelector(subject.selector);
  if (!subject.spiffeIds) return (_id, _p, attrs) => sel(attrs);
  const ids = spiffeMatcher(subject.spiffeIds);
  return (_id, principal, attrs) => ids(principal) && sel(attrs);
}

/** Compiles one validated policy. Throws RangeError only on input that validation would reject. */
export function compilePolicy(policy: Policy, order: number, ref: string, selectors?: SelectorTable): CompiledPolicy {
  const action: PolicyAction = policy.kind === 'MutualTLSPolicy' ? 'ALLOW' : policy.action;
  const ruleCount = policy.kind === 'AccessPolicy'
    ? Math.max(policy.ingress?.length ?? 0, policy.egress?.length ?? 0)
    : policy.kind === 'RuntimePolicy' ? Math.max(policy.processes?.length ?? 0, policy.files?.length ?? 0) : 0;
  const outcomes: RuleOutcome[] = [];
  for (let i = 0; i < ruleCount; i++) outcomes.push(ruleOutcome(ref, policy.kind, i, action, policy.mode));
  const base = {
    outcomes,
    order,
    ref,
    kind: policy.kind,
    mode: policy.mode,
    source: policy,
    subject: compileSubject(policy.subject),
    anchor: selectorAnchor(policy.subject.selector),
    specificity: policy.subject.selector.requirements.length + (policy.subject.spiffeIds ? 100 : 0),
  };
  switch (policy.kind) {
    case 'AccessPolicy':
      return {
        ...base,
        action: policy.action,
        ingress: policy.ingress?.map((r, i) => compileRule(r, i, selectors)),
        egress: policy.egress?.map((r, i) => compileRule(r, i, selectors)),
        processes: undefined,
        files: undefined,
        mtls: undefined,
      };
    case 'RuntimePolicy':
      return {
        ...base,
        action: policy.action,
        ingress: undefined,
        egress: undefined,
        processes: policy.processes?.map((r, index) => {
          const path = anyOf(r.paths.map(compileGlob));
          const sha = r.sha256 ? new Set(r.sha256) : undefined;
          return { index, match: (p: string, s: string | undefined) => path(p) && (sha === undefined || (s !== undefined && sha.has(s))) };
        }),
        files: policy.files?.map((r, index) => {
          const path = anyOf(r.paths.map(compileGlob));
          const access = new Set(r.access);
          return { index, match: (p: string, _s: string | undefined, a: FileAccess | undefined) => a !== undefined && access.has(a) && path(p) };
        }),
        mtls: undefined,
      };
    case 'MutualTLSPolicy': {
      const ports = new Map((policy.portLevel ?? []).map((p) => [p.port, p.mtls]));
      const def = policy.mtls;
      return {
        ...base,
        action: 'ALLOW',
        ingress: undefined,
        egress: undefined,
        processes: undefined,
        files: undefined,
        mtls: (port) => ports.get(port) ?? def,
      };
    }
  }
}
