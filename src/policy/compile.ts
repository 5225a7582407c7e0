/**
 * The compiled policy set: policies compiled once, indexed by subject, plus the workload attribute
 * table, with per-(peer, destination) decision caches invalidated by version. Attribute updates for
 * one identity are O(that identity): its own policy lists are recomputed lazily, and every cached
 * decision involving it is discarded on its next use by a version check.
 */
import type { AttributeSet } from '../identity/attributes.js';
import { workloadAttributeView } from '../identity/workload.js';
import type { AttributeView } from '../identity/selector.js';
import { PolicyError } from './errors.js';
import { parseIp } from './match.js';
import { compilePolicy, SelectorMemo, SelectorTable, type CompiledPolicy, type MatchInput, type PeerInfo } from './compiled.js';
import type { SelectorPredicate } from '../identity/selector.js';
import type { RuleOutcome } from './verdicts.js';
import type { Decision, PolicyHit, Verdict } from './decision.js';
import { policyRef, type Policy, type PolicyAction, type PolicyWorkload } from './model.js';
import { crossChecks, assertNoIssues } from './parse.js';
import { ResultInterner } from './verdicts.js';

/** The plain-data input of {@link compilePolicies}. */
export interface PolicySetInput {
  readonly policies: readonly Policy[];
  readonly workloads: readonly PolicyWorkload[];
}

/**
 * The policies that apply to one workload, per kind of decision, in input order. Interned: every
 * workload with the same lists (the replicas of a service) shares one object, and with it the
 * cache of ingress verdicts, which depend only on these lists, the source and the port.
 */
export interface AppliedPolicies {
  readonly ingress: readonly CompiledPolicy[];
  readonly egress: readonly CompiledPolicy[];
  readonly processes: readonly CompiledPolicy[];
  readonly files: readonly CompiledPolicy[];
  readonly mtls: readonly CompiledPolicy[];
  /**
   * No longer filled (ADR 0024: per-class connection plans and the selector memo made the
   * first-decision path cheaper than this cache's misses); kept so the shape stays compatible.
   */
  readonly ingressCache: Map<string, PeerCacheEntry<IngressVerdicts>>;
  ingressCacheSize: number;
  /**
   * Connection plans of this class, by direction and packed port key (ADR 0024): built on first
   * use, bounded like the caches.
   */
  plans?: Map<number, SidePlan>;
}

/**
 * The policies of one class that can decide a connection on one port/protocol/phase, with only
 * their usable rules whose operations match that port. Protection and dry-run flags depend only on
 * the class, so they are computed here once; policies without a candidate rule are left out.
 */
export interface SidePlan {
  readonly protectedE: boolean;
  readonly protectedD: boolean;
  readonly nonEnforce: boolean;
  /** Candidate rules in policy order, then rule order; everything the loop needs in one record. */
  readonly candidates: readonly PlanCandidate[];
  /** The side result when no candidate matches (filled on first use). */
  none: IngressVerdicts | undefined;
}

/** One candidate rule of a {@link SidePlan}. */
export interface PlanCandidate {
  /** Position of its policy in the class list (a policy's first matching rule decides). */
  readonly policy: number;
  readonly action: PolicyAction;
  readonly enforce: boolean;
  /** What the rule contributes when it matches (precomputed hit, verdicts, audit list). */
  readonly outcome: RuleOutcome;
  /** The single peer selector (checked through the peer's memo), or -1. */
  readonly selectorId: number;
  readonly selector: SelectorPredicate | undefined;
  /** The peer check when not a single selector; undefined when the rule has no `from`/`to`. */
  readonly peers: ((m: MatchInput) => boolean) | undefined;
  /** The `when` check; undefined when the rule has none. */
  readonly when: ((m: MatchInput) => boolean) | undefined;
}

/** Max connection plans kept per policy class (dropped whole when full, like the caches). */
export const MAX_PLANS_PER_CLASS = 4096;

/** What the ingress side of a connection decided (effective, audit, dry-run), for reuse. */
export interface IngressVerdicts {
  readonly effective: Verdict;
  readonly audit: readonly PolicyHit[];
  readonly dryRun: Verdict | undefined;
}

/** Cached results for one source (at one destination, or one policy class). */
export interface PeerCacheEntry<T = Decision> {
  epoch: number;
  peerVersion: number;
  /** The first result cached for this source (most sources use one port): key and value. */
  key0: number;
  decision0: T | undefined;
  /** Further results: port | protocol << 16 | phase << 18 -> result. */
  more: Map<number, T> | undefined;
  /** Entries for the same source qualified by an explicit source address. */
  byIp: Map<string, PeerCacheEntry<T>> | undefined;
}

/** A workload in the table: attributes, its precomputed peer view, lazily its policies and caches. */
export class WorkloadEntry {
  version = 1;
  /** Canonical keys of the addresses registered for this workload. */
  ipKeys: readonly string[] = [];
  attrs: AttributeView;
  peer: PeerInfo;
  applied: AppliedPolicies | undefined;
  /** source key (SPIFFE ID, address, or '' for unauthenticated) -> cached decisions */
  readonly cache = new Map<string, PeerCacheEntry>();
  /**
   * Decisions for known sources without an explicit address, keyed by one small integer:
   * `source.cacheId * 64 + port slot` (ADR 0024). A source gets a fresh `cacheId` whenever its
   * attributes change, so entries for its old attributes are never found again; the map is
   * dropped when the set's epoch moves on (a workload added or removed) or when it is full.
   */
  fastCache: Map<number, Decision> | undefined;
  fastCacheEpoch = 0;
  /** This entry's key part in other entries' {@link fastCache}; changes with every attribute update. */
  cacheId = 0;
  /** Entries in {@link cache} and {@link fastCache} together. */
  cacheSize = 0;

  /** The addresses as given (the first one is the peer address rules see). */
  ips: readonly string[] | undefined;

  constructor(
    readonly spiffeId: string,
    readonly principal: string,
    identity: PolicyWorkload,
    /** Number of interned peer selectors of the set (sizes the peer's selector memo). */
    readonly selectorCount = 0,
  ) {
    this.ips = identity.ips;
    this.attrs = workloadAttributeView(identity);
    this.peer = makePeer(this, identity.ips?.[0]);
  }

  reset(identity: PolicyWorkload): void {
    this.version++;
    this.ips = identity.ips;
    this.attrs = workloadAttributeView(identity);
    this.peer = makePeer(this, identity.ips?.[0]);
    this.applied = undefined;
    this.cache.clear();
    this.fastCache = undefined;
    this.cacheSize = 0;
  }
}

function makePeer(w: WorkloadEntry, ip: string | undefined): PeerInfo {
  const ns = w.attrs['k8s.namespace'];
  // A fresh memo with every new attribute view: outcomes remembered for old attributes are dropped.
  const memo = w.selectorCount > 0 ? new SelectorMemo(w.selectorCount) : undefined;
  return Object.freeze({
    authenticated: true,
    spiffeId: w.spiffeId,
    principal: w.principal,
    namespace: typeof ns === 'string' ? ns : '',
    attrs: w.attrs,
    known: true,
    ip: ip === undefined ? undefined : parseIp(ip),
    ...(memo ? { memo } : {}),
  });
}

/** Memoised entries for workloads not in the table ({@link CompiledPolicySet.transientEntry}). */
const MAX_TRANSIENT_ENTRIES = 4096;

/** Fast cache keys are `cacheId * PORT_SLOTS + slot`, below 2^30: small integers for V8. */
const PORT_SLOTS = 64;
const MAX_CACHE_ID = 2 ** 24;

/** Max cached decisions per destination before its cache is dropped (bounds memory under hostile peers). */
export const MAX_CACHE_PER_DESTINATION = 65_536;

/**
 * A compiled, indexed policy set. Build with {@link compilePolicies}; evaluate with the
 * `evaluate*` functions; feed attribute changes with {@link CompiledPolicySet.updateWorkload}.
 */
export class CompiledPolicySet {
  readonly #transients = new Map<string, WorkloadEntry>();
  /** Increments on every change (policies are immutable; workloads added, removed or updated). */
  version = 1;
  /** Increments when the set of known workloads changes (an unknown peer may become known). */
  epoch = 1;
  readonly policies: readonly CompiledPolicy[];
  /**
   * Some access rule looks at the peer's address (`ipBlocks`, `notIpBlocks`, `source.ip`,
   * `remote.ip`). Enforcement points pass the peer address only then, so the common case keeps
   * its identity-only decision cache.
   */
  readonly usesPeerAddress: boolean;
  readonly workloads = new Map<string, WorkloadEntry>();
  /** Shared side results and decisions of this set (see src/policy/verdicts.ts). */
  readonly results = new ResultInterner();
  readonly #byIp = new Map<string, WorkloadEntry>();
  /** anchor key -> anchor value -> policies */
  readonly #anchored = new Map<string, Map<string, CompiledPolicy[]>>();
  readonly #unanchored: CompiledPolicy[] = [];
  /** Interned policy lists: key of policy positions -> shared object. */
  readonly #interned = new Map<string, AppliedPolicies>();
  /** Distinct peer selectors of the policies (ids 0..n-1 for the per-peer memo). */
  readonly #selectorCount: number;
  /** Per policy (by order): the {@link applied} call that last visited it. */
  readonly #stamps: Uint32Array;
  #stampGen = 0;
  /** Next {@link WorkloadEntry.cacheId}; ids stay below 2^24 so cache keys are small integers. */
  #nextCacheId = 1;
  /** Packed port key -> slot (0-63) in the fast cache keys; later port keys use the general cache. */
  readonly #portSlots = new Map<number, number>();

  constructor(policies: readonly Policy[], workloads: readonly PolicyWorkload[]) {
    const selectors = new SelectorTable();
    this.policies = policies.map((p, i) => compilePolicy(p, i, policyRef(p), selectors));
    this.usesPeerAddress = this.policies.some((p) => [...(p.ingress ?? []), ...(p.egress ?? [])].some((r) => r.address));
    this.#selectorCount = selectors.size;
    this.#stamps = new Uint32Array(this.policies.length);
    for (const p of this.policies) {
      if (!p.anchor) {
        this.#unanchored.push(p);
        continue;
      }
      let byValue = this.#anchored.get(p.anchor.key);
      if (!byValue) this.#anchored.set(p.anchor.key, (byValue = new Map()));
      for (const v of new Set(p.anchor.values)) {
        const list = byValue.get(v);
        if (list) list.push(p);
        else byValue.set(v, [p]);
      }
    }
    for (const w of workloads) this.#add(w);
  }

  #add(identity: PolicyWorkload): WorkloadEntry {
    const entry = new WorkloadEntry(identity.spiffeId, identity.spiffeId.slice('spiffe://'.length), identity, this.#selectorCount);
    entry.cacheId = this.#cacheId();
    this.workloads.set(identity.spiffeId, entry);
    this.#indexIps(entry, identity.ips);
    return entry;
  }

  #indexIps(entry: WorkloadEntry, ips: readonly string[] | undefined): void {
    for (const k of entry.ipKeys) if (this.#byIp.get(k) === entry) this.#byIp.delete(k);
    entry.ipKeys = (ips ?? []).map(canonicalIpKey);
    for (const k of entry.ipKeys) this.#byIp.set(k, entry);
  }

  /** The workload registered with this address, if any. */
  workloadByIp(ip: string): WorkloadEntry | undefined {
    return this.#byIp.get(canonicalIpKey(ip));
  }

  /**
   * Adds a workload or replaces its attributes (e.g. a scan raised `vuln.critical`). Cheap: only
   * this workload's entry changes; decisions that involved it are recomputed on next use.
   *
   * @example
   * set.updateWorkload({ spiffeId, attributes: { ...old, 'vuln.critical': { value: 2, source: 'scan:trivy', observedAt } } });
   */
  updateWorkload(identity: PolicyWorkload): void {
    const entry = this.workloads.get(identity.spiffeId);
    this.version++;
    if (entry) {
      entry.reset(identity);
      entry.cacheId = this.#cacheId();
      this.#indexIps(entry, identity.ips);
    } else {
      this.#add(identity);
      this.epoch++;
    }
  }

  /** Replaces only the attributes of a known workload (keeps its addresses). */
  updateAttributes(spiffeId: string, attributes: AttributeSet): void {
    const entry = this.workloads.get(spiffeId);
    if (!entry) throw new PolicyError('ERR_POLICY_WORKLOAD', `unknown workload ${spiffeId}`, { details: { spiffeId } });
    this.version++;
    entry.reset({ spiffeId, attributes, ips: entry.ips });
    entry.cacheId = this.#cacheId();
  }

  /** A fresh cache id. When ids run out, every entry is renumbered and every cache invalidated. */
  #cacheId(): number {
    if (this.#nextCacheId >= MAX_CACHE_ID) {
      this.#nextCacheId = 1;
      this.epoch++;
      for (const e of this.workloads.values()) e.cacheId = this.#nextCacheId++;
    }
    return this.#nextCacheId++;
  }

  /** The slot (0-63) of a packed port key in fast cache keys, or -1 once 64 are taken. */
  portSlot(key: number): number {
    const slot = this.#portSlots.get(key);
    if (slot !== undefined) return slot;
    if (this.#portSlots.size >= PORT_SLOTS) return -1;
    this.#portSlots.set(key, this.#portSlots.size);
    return this.#portSlots.size - 1;
  }

  removeWorkload(spiffeId: string): boolean {
    const entry = this.workloads.get(spiffeId);
    if (!entry) return false;
    this.workloads.delete(spiffeId);
    this.#indexIps(entry, []);
    entry.version++;
    this.version++;
    this.epoch++;
    return true;
  }

  /** The policies applying to a workload, computed from the subject index and cached on the entry. */
  applied(entry: WorkloadEntry): AppliedPolicies {
    if (entry.applied) return entry.applied;
    // Each candidate policy is visited once (stamped with this call's generation) and its subject
    // checked; bucket lists are in input order, so only a merge of several lists needs a sort.
    if (++this.#stampGen === 0xffffffff) {
      this.#stamps.fill(0);
      this.#stampGen = 1;
    }
    const selected: CompiledPolicy[] = [];
    let lists = this.#visit(this.#unanchored, entry, selected) ? 1 : 0;
    for (const [key, byValue] of this.#anchored) {
      const v = entry.attrs[key];
      if (v === undefined) continue;
      if (Array.isArray(v)) {
        for (const value of v as readonly string[]) if (this.#visit(byValue.get(value), entry, selected)) lists++;
      } else if (this.#visit(byValue.get(typeof v === 'string' ? v : String(v)), entry, selected)) lists++;
    }
    if (lists > 1) selected.sort((a, b) => a.order - b.order);
    return (entry.applied = this.intern(selected));
  }

  /** Adds the policies of `list` not yet visited in this {@link applied} call whose subject selects `entry`. */
  #visit(list: readonly CompiledPolicy[] | undefined, entry: WorkloadEntry, selected: CompiledPolicy[]): boolean {
    if (list === undefined || list.length === 0) return false;
    const gen = this.#stampGen;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (this.#stamps[p.order] === gen) continue;
      this.#stamps[p.order] = gen;
      if (p.subject(entry.spiffeId, entry.principal, entry.attrs)) selected.push(p);
    }
    return true;
  }

  /** The shared {@link AppliedPolicies} for a list of policies (in input order). */
  protected intern(selected: readonly CompiledPolicy[]): AppliedPolicies {
    const key = selected.map((p) => p.order).join(',');
    const known = this.#interned.get(key);
    if (known) return known;
    const out: AppliedPolicies = { ingress: [], egress: [], processes: [], files: [], mtls: [], ingressCache: new Map(), ingressCacheSize: 0 };
    for (const p of selected) {
      if (p.ingress) (out.ingress as CompiledPolicy[]).push(p);
      if (p.egress) (out.egress as CompiledPolicy[]).push(p);
      if (p.processes) (out.processes as CompiledPolicy[]).push(p);
      if (p.files) (out.files as CompiledPolicy[]).push(p);
      if (p.mtls) (out.mtls as CompiledPolicy[]).push(p);
    }
    this.#interned.set(key, out);
    return out;
  }

  /**
   * An entry for a workload not in the table (attributes derived from its SPIFFE ID only). Not in
   * {@link workloads} (so the decision caches never key on it), but memoised, bounded: it depends
   * only on the SPIFFE ID and this set's policies, and building it (ID parse, attribute view, the
   * policies that select it) on every request was the agent's per-request cost for peers without
   * a Workload document. A table entry for the same ID, when there is one, is always looked up first.
   */
  transientEntry(spiffeId: string): WorkloadEntry {
    let entry = this.#transients.get(spiffeId);
    if (entry === undefined) {
      if (this.#transients.size >= MAX_TRANSIENT_ENTRIES) this.#transients.clear();
      entry = new WorkloadEntry(spiffeId, spiffeId.slice('spiffe://'.length), { spiffeId, attributes: {} }, this.#selectorCount);
      this.#transients.set(spiffeId, entry);
    }
    return entry;
  }
}

/** IPv4 and IPv6 spellings of one address share a key. */
function canonicalIpKey(ip: string): string {
  const bytes = parseIp(ip);
  return bytes ? Buffer.from(bytes).toString('hex') : ip;
}

/**
 * Compiles policies and workload identities into an indexed set for the hot path. The input is
 * plain data (what the server sends); policies are checked for duplicates first.
 *
 * @example
 * const set = compilePolicies({ policies, workloads });
 * evaluateConnection(set, { source: { spiffeId: a }, destination: { spiffeId: b }, port: 443 });
 */
export function compilePolicies(input: PolicySetInput): CompiledPolicySet {
  assertNoIssues(crossChecks(input.policies, input.workloads));
  return new CompiledPolicySet(input.policies, input.workloads);
}
