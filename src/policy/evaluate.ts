/**
 * Evaluation on the hot path: connections (L4, cached per source/destination/port), HTTP
 * requests (L7), process executions and file accesses. Semantics (docs/reference/policy.md):
 * default deny for a protected workload, DENY beats ALLOW, AUDIT never changes a decision,
 * dry-run/learn policies only change the `dryRun` verdict, and a connection needs both the
 * source's egress and the destination's ingress to allow it.
 */
import { PolicyError } from './errors.js';
import { parseIp } from './match.js';
import { normalizePath, type NormalizeOptions } from './path.js';
import { MATCH_ALL, type CompiledPolicy, type CompiledRule, type CompiledRuntimeRule, type MatchInput, type PeerInfo, type RequestInfo } from './compiled.js';
import { MAX_CACHE_PER_DESTINATION, MAX_PLANS_PER_CLASS, type AppliedPolicies, type CompiledPolicySet, type PeerCacheEntry, type PlanCandidate, type SidePlan, type WorkloadEntry } from './compile.js';
import { NO_HITS, type Decision, type PolicyHit, type Verdict } from './decision.js';
import { makeVerdict, type RuleOutcome, type SideResult } from './verdicts.js';
import type { Direction, FileAccess, MtlsMode, Transport } from './model.js';

/** The source of a connection: an authenticated identity (optionally with its address), an address, or nothing. */
export type SourceRef = { readonly spiffeId: string; readonly ip?: string } | { readonly ip: string } | { readonly unauthenticated: true };

/** The destination: a workload identity, or an address outside the mesh (egress only). */
export type DestinationRef = { readonly spiffeId: string } | { readonly ip: string };

export interface ConnectionQuery {
  readonly source: SourceRef;
  readonly destination: DestinationRef;
  readonly port: number;
  /** Default TCP. */
  readonly protocol?: Transport;
  /**
   * `tcp` (default): an opaque TCP connection; rules with HTTP-only fields narrow an ALLOW
   * (never match) and widen a DENY (HTTP fields ignored), as in Istio. `http`: the check at
   * connection time for an HTTP port; ALLOW rules with HTTP fields may still match and DENY rules
   * with HTTP fields are left to {@link evaluateRequest}.
   */
  readonly l7?: 'tcp' | 'http';
}

export interface RequestQuery {
  readonly source: SourceRef;
  readonly destination: DestinationRef;
  readonly port: number;
  readonly method: string;
  /** The raw request target; it is normalised here (see {@link normalizePath}). */
  readonly path: string;
  readonly host?: string;
  /** Header names are matched case-insensitively. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Claims of a JWT the proxy already validated; `iss`/`sub` form the request principal. */
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly normalize?: NormalizeOptions;
}

export interface ProcessQuery {
  readonly workload: string;
  /** Absolute executable path. */
  readonly path: string;
  /** Lower-case hex sha256 of the executable, when the sensor computed it. */
  readonly sha256?: string;
}

export interface FileQuery {
  readonly workload: string;
  readonly path: string;
  readonly access: FileAccess;
}

export type Phase = 'tcp' | 'http-connect' | 'request';

/** One rule's outcome in an explanation. */
export interface RuleTrace {
  readonly index: number;
  readonly matched: boolean;
  /** Why it did not match: the first part that failed, or that HTTP-only fields cannot apply here. */
  readonly failed?: 'peers' | 'operations' | 'when' | 'path' | 'access' | 'http-only-fields';
}

export interface PolicyTrace {
  readonly policy: string;
  readonly kind: string;
  readonly action: string;
  readonly mode: string;
  readonly direction: Direction | 'process' | 'file';
  readonly importedFrom?: string;
  readonly rules: readonly RuleTrace[];
}

const PROTOCOL_BITS: Record<Transport, number> = { TCP: 0, UDP: 1, SCTP: 2 };
const PHASE_BITS: Record<Phase, number> = { tcp: 0, 'http-connect': 1, request: 2 };

/** port | protocol << 16 | phase << 18: the key of cached decisions and of connection plans. */
function portKey(port: number, protocol: Transport, phase: Phase): number {
  return port | (PROTOCOL_BITS[protocol] << 16) | (PHASE_BITS[phase] << 18);
}

const verdict = makeVerdict;

const NOT_PROTECTED = { ingress: verdict(true, 'not-protected', 'ingress'), egress: verdict(true, 'not-protected', 'egress') };
const DEFAULT_DENY = { ingress: verdict(false, 'default-deny', 'ingress'), egress: verdict(false, 'default-deny', 'egress') };
const RUNTIME_DEFAULT_DENY = verdict(false, 'default-deny', undefined);
const RUNTIME_NOT_PROTECTED = verdict(true, 'not-protected', undefined);

/** Where a connection decision is cached: source key, optional source address, packed port key. */
interface CacheKeys {
  readonly k1: string;
  readonly k2: string | undefined;
  readonly key: number;
  readonly peerVersion: number;
}

/** Cache lookup with the key parts as arguments, so a hit allocates nothing. */
function cacheGet<T>(map: Map<string, PeerCacheEntry<T>>, k1: string, k2: string | undefined, key: number, peerVersion: number, epoch: number): T | undefined {
  const top = map.get(k1);
  const entry = k2 === undefined ? top : top?.byIp?.get(k2);
  if (entry === undefined || entry.epoch !== epoch || entry.peerVersion !== peerVersion) return undefined;
  if (entry.key0 === key && entry.decision0 !== undefined) return entry.decision0;
  return entry.more?.get(key);
}

function cachePut<T>(map: Map<string, PeerCacheEntry<T>>, c: CacheKeys, epoch: number, value: T): void {
  let top = map.get(c.k1);
  let entry = c.k2 === undefined ? top : top?.byIp?.get(c.k2);
  if (entry && (entry.epoch !== epoch || entry.peerVersion !== c.peerVersion)) {
    entry.decision0 = undefined;
    entry.more = undefined;
    entry.epoch = epoch;
    entry.peerVersion = c.peerVersion;
  }
  if (!entry) {
    entry = { epoch, peerVersion: c.peerVersion, key0: c.key, decision0: value, more: undefined, byIp: undefined };
    if (c.k2 === undefined) map.set(c.k1, entry);
    else {
      // The unqualified entry doubles as the holder of address-qualified ones (epoch -1: empty).
      if (!top) map.set(c.k1, (top = { epoch: -1, peerVersion: -1, key0: 0, decision0: undefined, more: undefined, byIp: undefined }));
      (top.byIp ??= new Map()).set(c.k2, entry);
    }
  } else if (entry.decision0 === undefined) {
    entry.key0 = c.key;
    entry.decision0 = value;
  } else (entry.more ??= new Map()).set(c.key, value);
}

function ruleUsable(rule: CompiledRule, action: string, phase: Phase): boolean {
  if (phase === 'request' || !rule.http) return true;
  // TCP: HTTP-only fields make an ALLOW/AUDIT rule unmatchable and are ignored in a DENY rule.
  if (phase === 'tcp') return action === 'DENY';
  // Connection check of an HTTP port: DENY rules with HTTP fields are decided per request.
  return action !== 'DENY';
}

function firstMatch(rules: readonly CompiledRule[], action: string, m: MatchInput, phase: Phase, trace: RuleTrace[] | undefined): number {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (!ruleUsable(r, action, phase)) {
      trace?.push({ index: r.index, matched: false, failed: 'http-only-fields' });
      continue;
    }
    if (trace) {
      const failed = !r.peers(m) ? 'peers' : !r.operations(m) ? 'operations' : !r.when(m) ? 'when' : undefined;
      trace.push(failed ? { index: r.index, matched: false, failed } : { index: r.index, matched: true });
      if (!failed) return r.index;
      continue;
    }
    if (r.peers(m) && r.operations(m) && r.when(m)) return r.index;
  }
  return -1;
}

/** What a runtime decision matches rules against. */
interface RuntimeInput {
  readonly path: string;
  readonly sha256: string | undefined;
  readonly access: FileAccess | undefined;
}

function firstRuntimeMatch(rules: readonly CompiledRuntimeRule[], kind: 'processes' | 'files', q: RuntimeInput, trace: RuleTrace[] | undefined): number {
  for (const r of rules) {
    const ok = r.match(q.path, q.sha256, q.access);
    trace?.push(ok ? { index: r.index, matched: true } : { index: r.index, matched: false, failed: kind === 'files' ? 'access' : 'path' });
    if (ok) return r.index;
  }
  return -1;
}

type DecideKind = 'ingress' | 'egress' | 'processes' | 'files';

/**
 * Shared decision logic for one side. Connections pass `m` (rules of `kind` ingress/egress are
 * matched against it); runtime decisions pass `rt`. The outcome of a matching rule (hit, verdicts,
 * audit list) is precomputed per policy, and the side result is interned on the set, so nothing
 * is allocated unless several AUDIT rules match or a trace is requested.
 */
function decide(
  set: CompiledPolicySet,
  policies: readonly CompiledPolicy[],
  direction: Direction | undefined,
  kind: DecideKind,
  m: MatchInput | undefined,
  phase: Phase,
  rt: RuntimeInput | undefined,
  traces: PolicyTrace[] | undefined,
  traceDirection: PolicyTrace['direction'],
): SideResult {
  let protectedE = false;
  let protectedD = false;
  let nonEnforce = false;
  let denyE: RuleOutcome | undefined;
  let denyD: RuleOutcome | undefined;
  let allowE: RuleOutcome | undefined;
  let allowD: RuleOutcome | undefined;
  let audit: readonly PolicyHit[] = NO_HITS;
  let auditShared = true;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    const enforce = p.mode === 'enforce';
    if (!enforce) nonEnforce = true;
    if (p.action === 'ALLOW') {
      protectedD = true;
      if (enforce) protectedE = true;
      // Nothing more to learn from another ALLOW once both views have one (unless explaining).
      if (!traces && allowD && (allowE || !enforce)) continue;
    } else if (p.action === 'DENY' && !traces && denyD && (denyE || !enforce)) continue;
    const trace = traces ? ([] as RuleTrace[]) : undefined;
    const idx = m !== undefined
      ? firstMatch(kind === 'ingress' ? p.ingress! : p.egress!, p.action, m, phase, trace)
      : firstRuntimeMatch(kind === 'processes' ? p.processes! : p.files!, kind as 'processes' | 'files', rt!, trace);
    if (traces) {
      const importedFrom = p.source.origin?.importedFrom;
      traces.push({ policy: p.ref, kind: p.kind, action: p.action, mode: p.mode, direction: traceDirection, ...(importedFrom ? { importedFrom } : {}), rules: trace! });
    }
    if (idx < 0) continue;
    const o = p.outcomes[idx]!;
    if (p.action === 'DENY') {
      if (enforce && !denyE) denyE = o;
      if (!denyD) denyD = o;
    } else if (p.action === 'ALLOW') {
      if (enforce && !allowE) allowE = o;
      if (!allowD) allowD = o;
    } else if (enforce) {
      if (audit.length === 0) audit = o.auditOnly;
      else {
        audit = [...audit, o.hit];
        auditShared = false;
      }
    }
  }
  const effective = buildVerdict(direction, denyE, allowE, protectedE);
  const dryRun = nonEnforce ? buildVerdict(direction, denyD, allowD, protectedD) : undefined;
  return traces ? { effective, audit, dryRun } : set.results.side(effective, audit, dryRun, auditShared);
}

/** A stand-in peer for evaluating operations at plan time (operations never look at the peer). */
const NO_PEER: PeerInfo = Object.freeze({ authenticated: false, spiffeId: '', principal: '', namespace: '', attrs: Object.freeze({}), known: false, ip: undefined });

/**
 * The plan for one side of a connection (phase tcp or http-connect) on one port key: usable rules
 * whose operations match the port (without a request, operations depend only on port and
 * protocol: HTTP-only fields count as matching), grouped by policy.
 */
function sidePlan(applied: AppliedPolicies, kind: 'ingress' | 'egress', port: number, protocol: Transport, phase: Phase, key: number): SidePlan {
  const plans = (applied.plans ??= new Map());
  const k = kind === 'ingress' ? key : -1 - key;
  const known = plans.get(k);
  if (known !== undefined) return known;
  const stub: MatchInput = { peer: NO_PEER, port, protocol, req: undefined, ignoreHttp: true };
  let protectedE = false;
  let protectedD = false;
  let nonEnforce = false;
  const candidates: PlanCandidate[] = [];
  const policies = applied[kind];
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    const enforce = p.mode === 'enforce';
    if (!enforce) nonEnforce = true;
    if (p.action === 'ALLOW') {
      protectedD = true;
      if (enforce) protectedE = true;
    }
    // A non-enforced AUDIT policy records nothing: only its dry-run flag (above) matters.
    if (p.action === 'AUDIT' && !enforce) continue;
    for (const r of p[kind]!) {
      if (!ruleUsable(r, p.action, phase) || !r.operations(stub)) continue;
      candidates.push({
        policy: i,
        action: p.action,
        enforce,
        outcome: p.outcomes[r.index]!,
        selectorId: r.peerSelector ? r.peerSelector.id : -1,
        selector: r.peerSelector?.predicate,
        peers: r.peerSelector || r.peers === MATCH_ALL ? undefined : r.peers,
        when: r.when === MATCH_ALL ? undefined : r.when,
      });
    }
  }
  const plan: SidePlan = { protectedE, protectedD, nonEnforce, candidates, none: undefined };
  if (plans.size >= MAX_PLANS_PER_CLASS) plans.clear();
  plans.set(k, plan);
  return plan;
}

/** A candidate's peers and conditions (its operations are known to match). */
function candidateMatches(c: PlanCandidate, m: MatchInput): boolean {
  const selector = c.selector;
  if (selector !== undefined) {
    const p = m.peer;
    if (!p.known || !p.authenticated) return false;
    const memo = p.memo;
    if (!(memo === undefined ? selector(p.attrs) : memo.test(c.selectorId, selector, p.attrs))) return false;
  } else if (c.peers !== undefined && !c.peers(m)) return false;
  return c.when === undefined || c.when(m);
}

/**
 * {@link decide} for a connection side through its plan (no trace): same outcome, fewer policies
 * and rules visited, operations not re-checked.
 */
function decidePlanned(set: CompiledPolicySet, plan: SidePlan, direction: Direction, m: MatchInput): SideResult {
  let denyE: RuleOutcome | undefined;
  let denyD: RuleOutcome | undefined;
  let allowE: RuleOutcome | undefined;
  let allowD: RuleOutcome | undefined;
  let audit: readonly PolicyHit[] = NO_HITS;
  let auditShared = true;
  let decided = -1;
  const candidates = plan.candidates;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    // Only a policy's first matching rule counts.
    if (c.policy === decided) continue;
    const enforce = c.enforce;
    if (c.action === 'ALLOW') {
      if (allowD && (allowE || !enforce)) continue;
    } else if (c.action === 'DENY' && denyD && (denyE || !enforce)) continue;
    if (!candidateMatches(c, m)) continue;
    decided = c.policy;
    const o = c.outcome;
    if (c.action === 'DENY') {
      if (enforce && !denyE) denyE = o;
      if (!denyD) denyD = o;
    } else if (c.action === 'ALLOW') {
      if (enforce && !allowE) allowE = o;
      if (!allowD) allowD = o;
    } else if (audit.length === 0) audit = o.auditOnly;
    else {
      audit = [...audit, o.hit];
      auditShared = false;
    }
  }
  if (decided < 0 && plan.none !== undefined) return plan.none;
  const effective = buildVerdict(direction, denyE, allowE, plan.protectedE);
  const dryRun = plan.nonEnforce ? buildVerdict(direction, denyD, allowD, plan.protectedD) : undefined;
  const result = set.results.side(effective, audit, dryRun, auditShared);
  if (decided < 0) plan.none = result;
  return result;
}

function outcomeVerdict(o: RuleOutcome, direction: Direction | undefined): Verdict {
  return direction === 'ingress' ? o.ingress : direction === 'egress' ? o.egress : o.runtime;
}

function buildVerdict(direction: Direction | undefined, deny: RuleOutcome | undefined, allow: RuleOutcome | undefined, prot: boolean): Verdict {
  if (deny) return outcomeVerdict(deny, direction);
  if (allow) return outcomeVerdict(allow, direction);
  if (!direction) return prot ? RUNTIME_DEFAULT_DENY : RUNTIME_NOT_PROTECTED;
  return prot ? DEFAULT_DENY[direction] : NOT_PROTECTED[direction];
}

function mtlsMode(applied: { readonly mtls: readonly CompiledPolicy[] }, port: number, includeNonEnforced: boolean): MtlsMode {
  let best: CompiledPolicy | undefined;
  let mode: MtlsMode = 'STRICT';
  for (const p of applied.mtls) {
    if (p.mode !== 'enforce' && !includeNonEnforced) continue;
    const m = p.mtls!(port);
    // The most specific subject wins (Istio: workload over namespace over mesh); STRICT on ties.
    if (!best || p.specificity > best.specificity || (p.specificity === best.specificity && m === 'STRICT')) {
      best = p;
      mode = m;
    }
  }
  return mode;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PolicyError('ERR_POLICY_QUERY', `port must be an integer in 1-65535, got ${String(port)}`);
}

function resolveSourcePeer(set: CompiledPolicySet, source: SourceRef): { peer: PeerInfo; entry: WorkloadEntry | undefined } {
  if ('spiffeId' in source) {
    const entry = set.workloads.get(source.spiffeId) ?? set.transientEntry(source.spiffeId);
    if (source.ip === undefined) return { peer: entry.peer, entry };
    const ip = parseIp(source.ip);
    if (!ip) throw new PolicyError('ERR_POLICY_QUERY', `invalid source IP ${JSON.stringify(source.ip)}`);
    return { peer: { ...entry.peer, ip }, entry };
  }
  if ('ip' in source) {
    const ip = parseIp(source.ip);
    if (!ip) throw new PolicyError('ERR_POLICY_QUERY', `invalid source IP ${JSON.stringify(source.ip)}`);
    return { peer: { authenticated: false, spiffeId: '', principal: '', namespace: '', attrs: EMPTY_ATTRS, known: false, ip }, entry: undefined };
  }
  return { peer: UNAUTHENTICATED_PEER, entry: undefined };
}

const EMPTY_ATTRS = Object.freeze(Object.create(null) as Record<string, never>);
const UNAUTHENTICATED_PEER: PeerInfo = Object.freeze({ authenticated: false, spiffeId: '', principal: '', namespace: '', attrs: EMPTY_ATTRS, known: false, ip: undefined });

interface Resolved {
  readonly sourcePeer: PeerInfo;
  readonly sourceEntry: WorkloadEntry | undefined;
  readonly destEntry: WorkloadEntry | undefined;
  readonly destPeer: PeerInfo;
}

function resolve(set: CompiledPolicySet, source: SourceRef, destination: DestinationRef): Resolved {
  const { peer: sourcePeer, entry: sourceEntry } = resolveSourcePeer(set, source);
  if ('spiffeId' in destination) {
    const destEntry = set.workloads.get(destination.spiffeId) ?? set.transientEntry(destination.spiffeId);
    return { sourcePeer, sourceEntry, destEntry, destPeer: destEntry.peer };
  }
  const ip = parseIp(destination.ip);
  if (!ip) throw new PolicyError('ERR_POLICY_QUERY', `invalid destination IP ${JSON.stringify(destination.ip)}`);
  const known = set.workloadByIp(destination.ip);
  return { sourcePeer, sourceEntry, destEntry: known, destPeer: known ? { ...known.peer, ip } : { ...UNAUTHENTICATED_PEER, ip } };
}

/** Evaluates both sides of a connection or request; `traces` collects an explanation when given. */
export function evaluateSides(
  set: CompiledPolicySet,
  r: Resolved,
  port: number,
  protocol: Transport,
  phase: Phase,
  req: RequestInfo | undefined,
  traces?: PolicyTrace[],
): Decision {
  // Egress at the source, matched against the destination.
  let egress: SideResult | undefined;
  if (r.sourceEntry) {
    const m: MatchInput = { peer: r.destPeer, port, protocol, req, ignoreHttp: phase !== 'request' };
    const applied = set.applied(r.sourceEntry);
    egress = traces === undefined && phase !== 'request'
      ? decidePlanned(set, sidePlan(applied, 'egress', port, protocol, phase, portKey(port, protocol, phase)), 'egress', m)
      : decide(set, applied.egress, 'egress', 'egress', m, phase, undefined, traces, 'egress');
  }
  let ingress: SideResult | undefined;
  if (r.destEntry) {
    const applied = set.applied(r.destEntry);
    const m: MatchInput = { peer: r.sourcePeer, port, protocol, req, ignoreHttp: phase !== 'request' };
    ingress = traces === undefined && phase !== 'request'
      ? decidePlanned(set, sidePlan(applied, 'ingress', port, protocol, phase, portKey(port, protocol, phase)), 'ingress', m)
      : decide(set, applied.ingress, 'ingress', 'ingress', m, phase, undefined, traces, 'ingress');
    if (!r.sourcePeer.authenticated) {
      const strictE = mtlsMode(applied, port, false) === 'STRICT';
      const strictD = mtlsMode(applied, port, true) === 'STRICT';
      if (strictE || strictD) {
        const refused = set.results.mtlsRequired(port);
        const effective = strictE ? refused : ingress.effective;
        const dryRun = strictD ? refused : (ingress.dryRun ?? (strictE ? ingress.effective : undefined));
        ingress = traces ? { effective, audit: ingress.audit, dryRun } : set.results.side(effective, ingress.audit, dryRun, ingress.audit.length <= 1);
      }
    }
  }
  return traces ? combine(egress, ingress) : set.results.decision(egress, ingress, combine);
}

function pickVerdict(e: Verdict | undefined, i: Verdict | undefined): Verdict {
  if (e && !e.allowed) return e;
  if (i) return i;
  return e ?? NOT_PROTECTED.ingress;
}

function combine(egress: SideResult | undefined, ingress: SideResult | undefined): Decision {
  const final = pickVerdict(egress?.effective, ingress?.effective);
  let audit: readonly PolicyHit[] = NO_HITS;
  if (egress && ingress && egress.audit.length && ingress.audit.length) audit = [...egress.audit, ...ingress.audit];
  else if (egress && egress.audit.length) audit = egress.audit;
  else if (ingress) audit = ingress.audit;
  const d: { -readonly [K in keyof Decision]: Decision[K] } = { allowed: final.allowed, reason: final.reason, audit };
  if (final.direction) d.direction = final.direction;
  if (final.policy !== undefined) {
    d.policy = final.policy;
    d.rule = final.rule;
    d.action = final.action;
    d.mode = final.mode;
  }
  if (final.detail) d.detail = final.detail;
  if (egress?.dryRun !== undefined || ingress?.dryRun !== undefined) {
    d.dryRun = pickVerdict(egress ? (egress.dryRun ?? egress.effective) : undefined, ingress ? (ingress.dryRun ?? ingress.effective) : undefined);
  }
  if (egress) d.egress = egress.effective;
  if (ingress) d.ingress = ingress.effective;
  return Object.freeze(d);
}

/**
 * Decides a new connection. Repeated decisions for the same (source, destination, port) come from
 * a cache on the destination, checked against the source's attribute version, so they allocate
 * nothing.
 *
 * @example
 * const d = evaluateConnection(set, { source: { spiffeId: 'spiffe://td/ns/a/sa/web' }, destination: { spiffeId: 'spiffe://td/ns/b/sa/db' }, port: 5432 });
 * if (!d.allowed) reject(d.reason, d.policy, d.rule);
 */
export function evaluateConnection(set: CompiledPolicySet, q: ConnectionQuery): Decision {
  checkPort(q.port);
  const protocol = q.protocol ?? 'TCP';
  const phase: Phase = q.l7 === 'http' ? 'http-connect' : 'tcp';
  const dest = 'spiffeId' in q.destination ? set.workloads.get(q.destination.spiffeId) : undefined;
  if (!dest) return evaluateSides(set, resolve(set, q.source, q.destination), q.port, protocol, phase, undefined);
  const src = q.source;
  const srcEntry = 'spiffeId' in src ? set.workloads.get(src.spiffeId) : undefined;
  const key = portKey(q.port, protocol, phase);
  const slot = srcEntry !== undefined && (src as { ip?: string }).ip === undefined ? set.portSlot(key) : -1;
  if (slot >= 0) {
    // A known identity (the common case): one small-integer key. The source's cacheId changes
    // whenever its attributes change, so a stale entry can never be found again.
    if (dest.fastCacheEpoch !== set.epoch) {
      dest.fastCache = undefined;
      dest.fastCacheEpoch = set.epoch;
    }
    const ck = srcEntry!.cacheId * 64 + slot;
    const hit = dest.fastCache?.get(ck);
    if (hit !== undefined) return hit;
    const decision = evaluateSides(set, { sourcePeer: srcEntry!.peer, sourceEntry: srcEntry, destEntry: dest, destPeer: dest.peer }, q.port, protocol, phase, undefined);
    if (dest.cacheSize >= MAX_CACHE_PER_DESTINATION) {
      dest.cache.clear();
      dest.fastCache = undefined;
      dest.cacheSize = 0;
    }
    (dest.fastCache ??= new Map()).set(ck, decision);
    dest.cacheSize++;
    return decision;
  }
  const k1 = 'spiffeId' in src ? src.spiffeId : 'ip' in src ? src.ip : '';
  const k2 = 'spiffeId' in src ? src.ip : undefined;
  const peerVersion = srcEntry ? srcEntry.version : 0;
  const hit = cacheGet(dest.cache, k1, k2, key, peerVersion, set.epoch);
  if (hit) return hit;
  const keys: CacheKeys = { k1, k2, key, peerVersion };
  const decision = evaluateSides(set, resolve(set, src, q.destination), q.port, protocol, phase, undefined);
  if (dest.cacheSize >= MAX_CACHE_PER_DESTINATION) {
    dest.cache.clear();
    dest.fastCache = undefined;
    dest.cacheSize = 0;
  }
  cachePut(dest.cache, keys, set.epoch, decision);
  dest.cacheSize++;
  return decision;
}

const METHOD_RE = /^[A-Z][A-Z0-9_-]{0,31}$/;

/** Builds the request view, or a reason why the request cannot be evaluated safely. */
export function requestInfo(q: RequestQuery): RequestInfo | string {
  if (typeof q.method !== 'string' || !METHOD_RE.test(q.method)) return 'invalid method';
  const norm = normalizePath(q.path, q.normalize);
  if (!norm.ok) return norm.reason;
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let host = q.host;
  if (q.headers) {
    for (const name of Object.keys(q.headers)) {
      const v = q.headers[name];
      if (typeof v !== 'string' || /[\r\n\0]/.test(v)) return `invalid header ${name.slice(0, 64)}`;
      const lower = name.toLowerCase();
      headers[lower] = v;
      if (lower === 'host' && host === undefined) host = v;
    }
  }
  if (host === undefined) host = q.headers?.[':authority'] ?? '';
  const h = host.toLowerCase();
  const colon = h.startsWith('[') ? h.indexOf(']:') + 1 : h.lastIndexOf(':');
  const claims = q.claims;
  const iss = claims?.['iss'];
  const sub = claims?.['sub'];
  return {
    method: q.method,
    path: norm.path,
    host: h,
    hostNoPort: colon > 0 ? h.slice(0, colon) : h,
    headers,
    claims,
    requestPrincipal: typeof iss === 'string' && typeof sub === 'string' ? `${iss}/${sub}` : '',
  };
}

/**
 * Decides one HTTP request (both sides, full L7 semantics). Paths are normalised first; a request
 * that cannot be normalised safely is denied with reason `invalid-request`.
 *
 * @example
 * evaluateRequest(set, { source, destination, port: 8080, method: 'GET', path: '/api/v1/orders?id=1', claims: { iss, sub } });
 */
export function evaluateRequest(set: CompiledPolicySet, q: RequestQuery, traces?: PolicyTrace[]): Decision {
  checkPort(q.port);
  const info = requestInfo(q);
  if (typeof info === 'string') return Object.freeze({ ...verdict(false, 'invalid-request', 'ingress', undefined, info), audit: NO_HITS });
  return evaluateSides(set, resolve(set, q.source, q.destination), q.port, 'TCP', 'request', info, traces);
}

/** Connection decision with an explanation trace (no cache). */
export function traceConnection(set: CompiledPolicySet, q: ConnectionQuery, traces: PolicyTrace[]): Decision {
  checkPort(q.port);
  return evaluateSides(set, resolve(set, q.source, q.destination), q.port, q.protocol ?? 'TCP', q.l7 === 'http' ? 'http-connect' : 'tcp', undefined, traces);
}

/** An absolute path without `.`/`..` segments or NUL, with repeated slashes merged; undefined if unsafe. */
function runtimePath(path: string): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > 4096 || path.includes('\0')) return undefined;
  const merged = path.replace(/\/{2,}/g, '/');
  if (merged.split('/').some((s) => s === '.' || s === '..')) return undefined;
  return merged;
}

function runtimeDecision(
  set: CompiledPolicySet,
  workload: string,
  kind: 'processes' | 'files',
  path: string,
  sha256: string | undefined,
  access: FileAccess | undefined,
  traces: PolicyTrace[] | undefined,
): Decision {
  const p = runtimePath(path);
  if (p === undefined) return Object.freeze({ ...verdict(false, 'invalid-request', undefined, undefined, 'path must be absolute, without . or .. segments'), audit: NO_HITS });
  const entry = set.workloads.get(workload) ?? set.transientEntry(workload);
  const policies = set.applied(entry)[kind];
  const side = decide(set, policies, undefined, kind, undefined, 'tcp', { path: p, sha256, access }, traces, kind === 'processes' ? 'process' : 'file');
  return Object.freeze({ ...side.effective, audit: side.audit, ...(side.dryRun ? { dryRun: side.dryRun } : {}) });
}

/**
 * Decides a process execution in a workload.
 *
 * @example
 * evaluateProcess(set, { workload: id, path: '/usr/bin/curl', sha256 });
 */
export function evaluateProcess(set: CompiledPolicySet, q: ProcessQuery, traces?: PolicyTrace[]): Decision {
  return runtimeDecision(set, q.workload, 'processes', q.path, q.sha256, undefined, traces);
}

/**
 * Decides a file read or write in a workload.
 *
 * @example
 * evaluateFile(set, { workload: id, path: '/etc/shadow', access: 'read' });
 */
export function evaluateFile(set: CompiledPolicySet, q: FileQuery, traces?: PolicyTrace[]): Decision {
  return runtimeDecision(set, q.workload, 'files', q.path, undefined, q.access, traces);
}
