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
import { compilePolicy, type CompiledPolicy, type PeerInfo } from './compiled.js';
import type { Decision, PolicyHit, Verdict } from './decision.js';
import { policyRef, type Policy, type PolicyWorkload } from './model.js';
import { crossChecks, assertNoIssues } from './parse.js';

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
  /** source key -> cached ingress verdicts for this policy class (see evaluateConnection). */
  readonly ingressCache: Map<string, PeerCacheEntry<IngressVerdicts>>;
  ingressCacheSize: number;
}

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
  cacheSize = 0;

  /** The addresses as given (the first one is the peer address rules see). */
  ips: readonly string[] | undefined;

  constructor(
    readonly spiffeId: string,
    readonly principal: string,
    identity: PolicyWorkload,
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
    this.cacheSize = 0;
  }
}

function makePeer(w: WorkloadEntry, ip: string | undefined): PeerInfo {
  const ns = w.attrs['k8s.namespace'];
  return Object.freeze({
    authenticated: true,
    spiffeId: w.spiffeId,
    principal: w.principal,
    namespace: typeof ns === 'string' ? ns : '',
    attrs: w.attrs,
    known: true,
    ip: ip === undefined ? undefined : parseIp(ip),
  });
}

/** Max cached decisions per destination before its cache is dropped (bounds memory under hostile peers). */
export const MAX_CACHE_PER_DESTINATION = 65_536;

/**
 * A compiled, indexed policy set. Build with {@link compilePolicies}; evaluate with the
 * `evaluate*` functions; feed attribute changes with {@link CompiledPolicySet.updateWorkload}.
 */
export class CompiledPolicySet {
  /** Increments on every change (policies are immutable; workloads added, removed or updated). */
  version = 1;
  /** Increments when the set of known workloads changes (an unknown peer may become known). */
  epoch = 1;
  readonly policies: readonly CompiledPolicy[];
  readonly workloads = new Map<string, WorkloadEntry>();
  readonly #byIp = new Map<string, WorkloadEntry>();
  /** anchor key -> anchor value -> policies */
  readonly #anchored = new Map<string, Map<string, CompiledPolicy[]>>();
  readonly #unanchored: CompiledPolicy[] = [];
  /** Interned policy lists: key of policy positions -> shared object. */
  readonly #interned = new Map<string, AppliedPolicies>();

  constructor(policies: readonly Policy[], workloads: readonly PolicyWorkload[]) {
    this.policies = policies.map((p, i) => compilePolicy(p, i, policyRef(p)));
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
    const entry = new WorkloadEntry(identity.spiffeId, identity.spiffeId.slice('spiffe://'.length), identity);
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
    const seen = new Set<CompiledPolicy>();
    const candidates: CompiledPolicy[] = [...this.#unanchored];
    for (const [key, byValue] of this.#anchored) {
      const v = entry.attrs[key];
      if (v === undefined) continue;
      const values = Array.isArray(v) ? (v as readonly string[]) : [typeof v === 'string' ? v : String(v)];
      for (const value of values) for (const p of byValue.get(value) ?? []) if (!seen.has(p)) {
        seen.add(p);
        candidates.push(p);
      }
    }
    candidates.sort((a, b) => a.order - b.order);
    const selected = candidates.filter((p) => p.subject(entry.spiffeId, entry.principal, entry.attrs));
    return (entry.applied = this.intern(selected));
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

  /** An entry for a workload not in the table (attributes derived from its SPIFFE ID only); not stored. */
  transientEntry(spiffeId: string): WorkloadEntry {
    return new WorkloadEntry(spiffeId, spiffeId.slice('spiffe://'.length), { spiffeId, attributes: {} });
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
