/**
 * The server's in-memory view of the registry: entries, policies, agents, workloads with their
 * attributes, and revocations, as of one resource version of the store's change log. It is
 * loaded once, then kept current by reading only the changes after its version (the change log
 * is the single source of truth, so every replica on one PostgreSQL converges on the same view).
 *
 * It is also the {@link ViewSource} of the watch stream. Whole-state parts (bundle, entries,
 * policies, revocations) are resent when their content changes; workload attributes go only
 * for the workloads an agent needs (its own and the peers its policies judge by attributes),
 * as a `reset` on connect or when that need changes, then as deltas. Entries and policies are
 * scoped per agent too: an agent gets the entries it may mint and only the policies that can
 * decide for the workloads it hosts (ADR 0076, see {@link scopingOf}).
 */
import type { AgentInfo, Entry, PolicyRecord, WatchMessage, Workload } from '../../api/types.js';
import { mergeAttributes, type AttributeSet } from '../../identity/attributes.js';
import { compileSelector, type AttributeView } from '../../identity/selector.js';
import { workloadAttributeView } from '../../identity/workload.js';
import type { Change, Revocation, Store } from '../../store/index.js';
import type { CaPort } from '../ports.js';
import { spiffeMatcher } from '../../policy/compiled.js';
import type { Peer, Policy } from '../../policy/model.js';
import { partHash, type ViewSource, type WatchCursor } from './watch-hub.js';
import { entryFromStore } from './entries.js';

type Part<T extends WatchMessage['type']> = Extract<WatchMessage, { type: T }>;
type WholeType = 'bundle' | 'entries' | 'policies' | 'revocations';

/** True when `entry` may be served by `agent`: named as parent, or parented to the server with all node selectors held. */
export function entryBelongsTo(entry: Entry, agent: Pick<AgentInfo, 'agentId' | 'selectors'>): boolean {
  if (entry.parentId === agent.agentId) return true;
  if (entry.parentId !== '*') return false;
  if (entry.nodeSelectors.length === 0) return false; // would hand the entry to every agent: refuse
  return entry.nodeSelectors.every((s) => agent.selectors.includes(s));
}

const PAGE = 1000;
/** How many attribute deltas to keep for resuming agents; older cursors get a reset. */
const MAX_DELTAS = 4096;

export class RegistryView implements ViewSource {
  readonly #store: Store;
  readonly #ca: CaPort;
  readonly #trustDomain: string;
  readonly #nodeAttestors: ReadonlySet<string>;

  #version = 0;
  #loadedFrom = 0;
  readonly #entries = new Map<string, Entry>();
  /** Indexes over entries: by SPIFFE ID (SVID requests), by parent and by node selector (agent views). */
  readonly #bySpiffeId = new Map<string, Set<string>>();
  readonly #byParent = new Map<string, Set<string>>();
  readonly #bySelector = new Map<string, Set<string>>();
  readonly #policies = new Map<string, PolicyRecord>();
  readonly #agents = new Map<string, AgentInfo>();
  readonly #workloads = new Map<string, Workload>();
  /** Each workload's own attributes (attestors), and each image's scan and provenance sets. */
  readonly #own = new Map<string, AttributeSet>();
  readonly #images = new Map<string, readonly AttributeSet[]>();
  #revocations: Revocation[] = [];
  #revokedSerials = new Set<string>();

  /** Version of the last change per part type (for resumption). */
  readonly #kindVersion = { bundle: 0, entries: 0, policies: 0, revocations: 0, attributes: 0 };
  /** Attribute deltas: version → SPIFFE IDs changed (upserted or removed) at that version. */
  #deltas: { version: number; ids: string[] }[] = [];

  // Parts memoised until their kind changes (shared by every agent).
  #bundlePart: Part<'bundle'> | undefined;
  #revocationsPart: Part<'revocations'> | undefined;
  #entriesParts = new Map<string, Part<'entries'>>();
  readonly #attrFull = new Map<string, Part<'attributes'>>();
  readonly #attrDeltaCache = new Map<string, Part<'attributes'>>();
  /**
   * What each agent needs of the attribute table: recomputed for every agent when entries or agents
   * change, and for the agents a policy can concern when one that judges peers by attributes
   * changes (see {@link needShapeOf}).
   */
  readonly #needs = new Map<string, Need>();

  // ---- Policy scoping (ADR 0076). Kept current change by change, for every known agent, so a
  // part's version is the version of the last change to that agent's set on every replica.
  /** How each policy is scoped, by name. */
  readonly #scoping = new Map<string, Scoping>();
  /** Policies that can concern only the SPIFFE IDs they name exactly, by those IDs; the others are tried on every identity. */
  readonly #byExactId = new Map<string, Set<string>>();
  readonly #unindexed = new Set<string>();
  /** Policies every agent gets, whatever it hosts. */
  #everywhere = new Set<string>();
  /** SPIFFE ID → agents whose entries let them serve it. */
  #entryHosts = new Map<string, Set<string>>();
  /** Agent → SPIFFE IDs its entries let it serve. */
  #entryHosted = new Map<string, Set<string>>();
  /** Node selector → agents holding it (who may serve an entry parented to the server). */
  readonly #agentsBySelector = new Map<string, Set<string>>();
  /** Registered identities (entries, workloads) that no agent serves: their callers are the only place their ingress rules are enforced. */
  #unhosted = new Set<string>();
  /** Agent → SPIFFE IDs of the workloads registered through it (served until their SVIDs expire, entry or not). */
  readonly #registeredBy = new Map<string, Set<string>>();
  /** Served SPIFFE ID → names of the policies that concern it: its subject selects it (on the attributes the agent is sent) or an ingress rule names it as a caller. */
  readonly #selectedBy = new Map<string, ReadonlySet<string>>();
  /** Attribute views of SPIFFE IDs, as the agent's engine builds them; dropped when attributes change. */
  readonly #views = new Map<string, AttributeView>();
  /** Views of unserved identities from their SPIFFE ID alone (what a caller without their attributes sees). */
  readonly #bareViews = new Map<string, AttributeView>();
  /** Agent → version of the last change to its policy set (never below the load version). */
  readonly #scopeVersion = new Map<string, number>();
  /** Agent → its current policies part; dropped when its set changes. */
  readonly #scopeParts = new Map<string, Part<'policies'>>();
  /** `version|names` → part: agents whose sets changed together to the same policies share one object. */
  readonly #sharedScopes = new Map<string, Part<'policies'>>();

  #refreshing: Promise<void> | undefined;
  #again = false;

  constructor(store: Store, ca: CaPort, trustDomain: string, nodeAttestors: ReadonlySet<string>) {
    this.#store = store;
    this.#ca = ca;
    this.#trustDomain = trustDomain;
    this.#nodeAttestors = nodeAttestors;
  }

  get version(): number {
    return this.#version;
  }

  entries(): Entry[] {
    return [...this.#entries.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  entry(id: string): Entry | undefined {
    return this.#entries.get(id);
  }

  /** The entries that let `agent` mint `spiffeId` (usually zero or one). */
  entriesFor(spiffeId: string, agent: Pick<AgentInfo, 'agentId' | 'selectors'>): Entry[] {
    const ids = this.#bySpiffeId.get(spiffeId);
    if (ids === undefined) return [];
    return [...ids].map((id) => this.#entries.get(id) as Entry).filter((e) => entryBelongsTo(e, agent));
  }

  /** Every entry `agent` may mint, by id. */
  #entriesOf(agent: Pick<AgentInfo, 'agentId' | 'selectors'>): Entry[] {
    const ids = new Set(this.#byParent.get(agent.agentId) ?? []);
    for (const sel of agent.selectors) for (const id of this.#bySelector.get(sel) ?? []) ids.add(id);
    return [...ids].map((id) => this.#entries.get(id) as Entry).filter((e) => entryBelongsTo(e, agent)).sort((a, b) => a.id.localeCompare(b.id));
  }

  #indexEntry(id: string, entry: Entry | undefined): void {
    const prev = this.#entries.get(id);
    const drop = (m: Map<string, Set<string>>, k: string): void => {
      const set = m.get(k);
      set?.delete(id);
      if (set?.size === 0) m.delete(k);
    };
    const add = (m: Map<string, Set<string>>, k: string): void => {
      let set = m.get(k);
      if (set === undefined) m.set(k, (set = new Set()));
      set.add(id);
    };
    if (prev !== undefined) {
      drop(this.#bySpiffeId, prev.spiffeId);
      drop(this.#byParent, prev.parentId);
      for (const sel of prev.nodeSelectors) drop(this.#bySelector, sel);
      this.#entries.delete(id);
    }
    if (entry !== undefined) {
      add(this.#bySpiffeId, entry.spiffeId);
      add(this.#byParent, entry.parentId);
      // An entry needs every node selector; indexing one would do, but any of them finds it.
      for (const sel of entry.nodeSelectors) add(this.#bySelector, sel);
      this.#entries.set(id, entry);
    }
  }

  policies(): PolicyRecord[] {
    return [...this.#policies.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  policy(name: string): PolicyRecord | undefined {
    return this.#policies.get(name);
  }

  agents(): AgentInfo[] {
    return [...this.#agents.values()].sort((a, b) => a.agentId.localeCompare(b.agentId));
  }

  agent(id: string): AgentInfo | undefined {
    return this.#agents.get(id);
  }

  workloads(): Workload[] {
    return [...this.#workloads.values()].sort((a, b) => a.spiffeId.localeCompare(b.spiffeId));
  }

  workload(id: string): Workload | undefined {
    return this.#workloads.get(id);
  }

  isSerialRevoked(serial: string): boolean {
    return this.#revokedSerials.has(serial.toLowerCase());
  }

  /** Full load: everything, as of the change log's latest version. */
  async load(): Promise<void> {
    const version = await this.#store.changes.latest();
    const [entries, policies, agents, workloads, revocations] = await Promise.all([
      this.#store.entries.list(), this.#store.policies.list(), this.#store.agents.list(), this.#store.workloads.list(), this.#store.revocations.listActive(),
    ]);
    for (const id of [...this.#entries.keys()]) this.#indexEntry(id, undefined);
    for (const e of entries) {
      const entry = entryFromStore(e, this.#trustDomain, this.#nodeAttestors);
      this.#indexEntry(entry.id, entry);
    }
    this.#policies.clear();
    for (const p of policies) this.#policies.set(p.name, policyFromStore(p));
    this.#agents.clear();
    this.#agentsBySelector.clear();
    for (const a of agents) this.#setAgent(a.agentId, await this.#agentInfo(a));
    this.#workloads.clear();
    this.#registeredBy.clear();
    this.#own.clear();
    this.#images.clear();
    for (const w of workloads) {
      this.#own.set(w.spiffeId, await this.#store.attributes.own(w.spiffeId));
      this.#setWorkload(w, await this.#imageSets(w.imageDigest));
    }
    this.#setRevocations(revocations);
    this.#version = version;
    this.#loadedFrom = version;
    Object.assign(this.#kindVersion, { bundle: 0, entries: version, policies: version, revocations: version, attributes: version });
    this.#deltas = [];
    this.#invalidate('all');
    // Policy scoping from scratch: every agent's set counts as changed at the load version, so an
    // agent resuming from before it gets its set again, whatever this view saw before.
    for (const name of [...this.#scoping.keys()]) this.#setScoping(name, undefined);
    for (const p of this.#policies.values()) this.#setScoping(p.name, scopingOf(p));
    this.#selectedBy.clear();
    this.#views.clear();
    this.#bareViews.clear();
    this.#scopeVersion.clear();
    this.#scopeParts.clear();
    this.#sharedScopes.clear();
    this.#everywhere = new Set();
    this.#entryHosted = new Map();
    this.#rebuildHosting(version);
  }

  /** Applies every change after the current version; concurrent calls coalesce. */
  refresh(): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      try {
        do {
          this.#again = false;
          await this.#applyChanges();
        } while (this.#again);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  async #applyChanges(): Promise<void> {
    for (;;) {
      const page = await this.#store.changes.since(this.#version, PAGE);
      if (page.compacted) {
        await this.load();
        return;
      }
      if (page.changes.length === 0) return;
      await this.#apply(page.changes);
      this.#version = page.changes[page.changes.length - 1]!.version;
      if (page.changes.length < PAGE) return;
    }
  }

  async #apply(changes: readonly Change[]): Promise<void> {
    // Each change is visible (caches dropped, delta recorded) as soon as it is applied: a fan-out
    // running while later changes are still being read must never skip an earlier one.
    const touch = (what: string): void => this.#invalidate(what);
    // Parts shared by agents whose policy sets changed at the same version: built in the fan-out
    // after this batch, never needed again once later changes are applied.
    this.#sharedScopes.clear();
    const markAttr = (version: number, id: string): void => {
      const last = this.#deltas[this.#deltas.length - 1];
      if (last !== undefined && last.version === version) last.ids.push(id);
      else this.#deltas.push({ version, ids: [id] });
      if (this.#deltas.length > MAX_DELTAS) this.#deltas = this.#deltas.slice(-MAX_DELTAS);
      this.#kindVersion.attributes = version;
      touch('attributes');
    };
    for (const c of changes) {
      switch (c.kind) {
        case 'entry': {
          const e = await this.#store.entries.get(c.resourceId);
          const before = this.#entries.get(c.resourceId);
          const after = e === null ? undefined : entryFromStore(e, this.#trustDomain, this.#nodeAttestors);
          this.#indexEntry(c.resourceId, after);
          this.#kindVersion.entries = c.version;
          touch('entries');
          this.#rehost([...this.#ownersOf(before), ...this.#ownersOf(after)], [before?.spiffeId, after?.spiffeId], c.version);
          break;
        }
        case 'policy': {
          const p = await this.#store.policies.get(c.resourceId);
          this.#dropNeeds(this.#policies.get(c.resourceId));
          if (p === null) this.#policies.delete(c.resourceId);
          else this.#policies.set(p.name, policyFromStore(p));
          this.#kindVersion.policies = c.version;
          touch('policies');
          this.#dropNeeds(this.#policies.get(c.resourceId));
          this.#policyChanged(c.resourceId, c.version);
          break;
        }
        case 'agent': {
          const a = await this.#store.agents.get(c.resourceId);
          this.#setAgent(c.resourceId, a === null ? undefined : await this.#agentInfo(a));
          this.#kindVersion.entries = c.version; // an agent's selectors decide which entries it sees
          touch('entries');
          this.#rehost([c.resourceId], [], c.version);
          break;
        }
        case 'workload':
        case 'attributes': {
          if (this.#agents.has(c.resourceId)) {
            const a = await this.#store.agents.get(c.resourceId);
            if (a !== null) {
              this.#setAgent(a.agentId, await this.#agentInfo(a));
              this.#rehost([a.agentId], [], c.version);
            }
          }
          const before = this.#workloads.get(c.resourceId)?.agentId;
          if (await this.#reloadWorkload(c.resourceId)) {
            markAttr(c.version, c.resourceId);
            this.#workloadChanged(c.resourceId, before, c.version);
          }
          break;
        }
        case 'image': {
          // Image facts (scans, provenance) are read once and merged into every workload of the
          // image with the own attributes already held: three queries, whatever the fleet size.
          this.#images.delete(c.resourceId);
          const sets = await this.#imageSets(c.resourceId);
          for (const w of await this.#store.workloads.list({ imageDigest: c.resourceId })) {
            if (!this.#own.has(w.spiffeId)) this.#own.set(w.spiffeId, await this.#store.attributes.own(w.spiffeId));
            const before = this.#workloads.get(w.spiffeId)?.agentId;
            this.#setWorkload(w, sets);
            markAttr(c.version, w.spiffeId);
            this.#workloadChanged(w.spiffeId, before, c.version);
          }
          break;
        }
        case 'revocation': {
          this.#setRevocations(await this.#store.revocations.listActive());
          this.#kindVersion.revocations = c.version;
          touch('revocations');
          break;
        }
        case 'ca':
          this.#kindVersion.bundle = c.version;
          touch('bundle');
          break;
        default:
          break;
      }
    }
  }

  /** Re-reads one workload; true when it exists or existed (an upsert or a removal to send). */
  async #reloadWorkload(spiffeId: string): Promise<boolean> {
    const w = await this.#store.workloads.get(spiffeId);
    if (w === null) {
      this.#own.delete(spiffeId);
      const gone = this.#workloads.get(spiffeId);
      if (gone !== undefined) this.#registeredBy.get(gone.agentId)?.delete(spiffeId);
      return this.#workloads.delete(spiffeId);
    }
    this.#own.set(spiffeId, await this.#store.attributes.own(spiffeId));
    this.#setWorkload(w, await this.#imageSets(w.imageDigest));
    return true;
  }

  /** Scans then provenance of an image, cached until the image changes (merge order of the store's forWorkload). */
  async #imageSets(digest: string | null): Promise<readonly AttributeSet[]> {
    if (digest === null) return [];
    let sets = this.#images.get(digest);
    if (sets === undefined) {
      const [scans, prov] = await Promise.all([this.#store.images.scans(digest), this.#store.images.provenance(digest)]);
      sets = [...scans.map((x) => x.attributes), ...(prov === null ? [] : [prov.attributes])];
      this.#images.set(digest, sets);
    }
    return sets;
  }

  #setWorkload(w: { spiffeId: string; agentId: string; imageDigest: string | null; firstSeen: number; lastSeen: number }, imageSets: readonly AttributeSet[]): void {
    const attributes = mergeAttributes(...imageSets, this.#own.get(w.spiffeId) ?? {});
    const before = this.#workloads.get(w.spiffeId)?.agentId;
    if (before !== w.agentId) {
      if (before !== undefined) this.#registeredBy.get(before)?.delete(w.spiffeId);
      let ids = this.#registeredBy.get(w.agentId);
      if (ids === undefined) this.#registeredBy.set(w.agentId, (ids = new Set()));
      ids.add(w.spiffeId);
    }
    this.#workloads.set(w.spiffeId, { spiffeId: w.spiffeId, agentId: w.agentId, imageDigest: w.imageDigest, attributes, firstSeenAt: w.firstSeen, lastSeenAt: w.lastSeen });
  }

  async #agentInfo(a: { agentId: string; attestationType: string; selectors: readonly string[]; revoked: boolean; firstSeen: number; lastSeen: number; spiffeId: string }): Promise<AgentInfo> {
    const attributes: AttributeSet = await this.#store.attributes.own(a.spiffeId);
    return { agentId: a.agentId, attestor: a.attestationType, selectors: a.selectors, attributes, revoked: a.revoked, firstSeenAt: a.firstSeen, lastSeenAt: a.lastSeen };
  }

  #setRevocations(list: Revocation[]): void {
    this.#revocations = list;
    this.#revokedSerials = new Set(list.map((r) => r.serial.toLowerCase()));
  }

  #invalidate(what: string): void {
    if (what === 'all' || what === 'bundle') this.#bundlePart = undefined;
    if (what === 'all' || what === 'entries') this.#needs.clear();
    if (what === 'all' || what === 'revocations') this.#revocationsPart = undefined;
    if (what === 'all' || what === 'entries') this.#entriesParts.clear();
    if (what === 'all' || what === 'attributes') {
      this.#attrFull.clear();
      this.#attrDeltaCache.clear();
    }
  }

  /**
   * Forgets the needs a policy (before or after a change) can be part of: every agent's when its
   * subject has no SPIFFE ID patterns, else those of the agents serving an identity the patterns
   * match. A policy that judges no peer by attributes is part of no need: nothing to forget.
   */
  #dropNeeds(record: PolicyRecord | undefined): void {
    const shape = record === undefined ? 'none' : needShapeOf(record);
    if (shape === 'none') return;
    if (shape === 'all') {
      this.#needs.clear();
      return;
    }
    for (const [id, agents] of this.#entryHosts) if (shape(principalOf(id))) for (const a of agents) this.#needs.delete(a);
  }

  // ---- Policy scoping (ADR 0076) ----

  /** The attributes the agent's engine evaluates a subject on: those it is sent, or those its SPIFFE ID implies. */
  #viewOf(spiffeId: string): AttributeView {
    let view = this.#views.get(spiffeId);
    if (view === undefined) {
      view = workloadAttributeView({ spiffeId, attributes: this.#workloads.get(spiffeId)?.attributes ?? {} });
      this.#views.set(spiffeId, view);
    }
    return view;
  }

  #setScoping(name: string, scoping: Scoping | undefined): void {
    for (const id of this.#scoping.get(name)?.keys ?? []) {
      const names = this.#byExactId.get(id);
      names?.delete(name);
      if (names?.size === 0) this.#byExactId.delete(id);
    }
    this.#unindexed.delete(name);
    if (scoping === undefined) {
      this.#scoping.delete(name);
      return;
    }
    this.#scoping.set(name, scoping);
    if (scoping.keys === undefined) this.#unindexed.add(name);
    else {
      for (const id of scoping.keys) {
        let names = this.#byExactId.get(id);
        if (names === undefined) this.#byExactId.set(id, (names = new Set()));
        names.add(name);
      }
    }
  }

  /**
   * Names of the policies that concern `spiffeId` (its subject, or a caller named): the policies
   * naming it exactly and those that cannot be indexed, for one identity.
   */
  #selectsOf(spiffeId: string): Set<string> {
    const view = this.#viewOf(spiffeId);
    const out = new Set<string>();
    const test = (name: string): void => {
      if ((this.#scoping.get(name) as Scoping).concerns(spiffeId, view)) out.add(name);
    };
    for (const name of this.#unindexed) test(name);
    for (const name of this.#byExactId.get(spiffeId) ?? []) test(name);
    return out;
  }

  /** True when `agentId` is a known agent that is not revoked. */
  #serving(agentId: string | undefined): agentId is string {
    const a = agentId === undefined ? undefined : this.#agents.get(agentId);
    return a !== undefined && !a.revoked;
  }

  /** Agents that serve `spiffeId`: through an entry, or as the agent that registered the workload. */
  #hostsOf(spiffeId: string): Set<string> {
    const out = new Set(this.#entryHosts.get(spiffeId));
    const by = this.#workloads.get(spiffeId)?.agentId;
    if (this.#serving(by)) out.add(by);
    return out;
  }

  #isHosted(spiffeId: string): boolean {
    return this.#entryHosts.has(spiffeId) || this.#serving(this.#workloads.get(spiffeId)?.agentId);
  }

  /** SPIFFE IDs `agentId` serves. */
  #hostedOf(agentId: string): Set<string> {
    const out = new Set(this.#entryHosted.get(agentId));
    for (const id of this.#registeredBy.get(agentId) ?? []) out.add(id);
    return out;
  }

  /** The agent's policy set changed (or may have) at `version`: its part is rebuilt, with that version. */
  #bump(agentId: string, version: number): void {
    this.#scopeVersion.set(agentId, Math.max(version, this.#scopeVersion.get(agentId) ?? 0));
    this.#scopeParts.delete(agentId);
  }

  #bumpAll(version: number): void {
    for (const agentId of this.#agents.keys()) this.#bump(agentId, version);
  }

  /**
   * Whether a policy's subject selects an identity no agent serves, as some caller may see it: a
   * caller holding its attributes sees those, any other only what its SPIFFE ID implies.
   */
  #selectsUnserved(scoping: Scoping, spiffeId: string): boolean {
    if (scoping.selects(spiffeId, this.#viewOf(spiffeId))) return true;
    if (!this.#workloads.has(spiffeId)) return false;
    let bare = this.#bareViews.get(spiffeId);
    if (bare === undefined) this.#bareViews.set(spiffeId, (bare = workloadAttributeView({ spiffeId, attributes: {} })));
    return scoping.selects(spiffeId, bare);
  }

  /** True when every agent must get the policy (see {@link scopingOf}). */
  #isEverywhere(scoping: Scoping): boolean {
    if (scoping.everywhere) return true;
    if (!scoping.ingress) return false;
    for (const id of scoping.exactIds) if (!this.#isHosted(id) && this.#selectsUnserved(scoping, id)) return true;
    for (const id of this.#unhosted) if (this.#selectsUnserved(scoping, id)) return true;
    return false;
  }

  /** Every policy's membership of the sent-everywhere set (load): O(policies × unserved identities). */
  #recomputeEverywhere(version: number): void {
    const next = new Set<string>();
    for (const [name, scoping] of this.#scoping) if (this.#isEverywhere(scoping)) next.add(name);
    if (sameSet(next, this.#everywhere)) return;
    this.#everywhere = next;
    this.#bumpAll(version);
  }

  /**
   * Whether an identity is served or not changed, or the attributes of an unserved one: a policy
   * can only join the sent-everywhere set through that identity (O(policies)); one already in it
   * by its ingress rules is checked again (early exit on the first unserved identity it selects).
   */
  #reviewEverywhere(spiffeId: string, version: number): void {
    let changed = false;
    const unserved = !this.#isHosted(spiffeId);
    for (const [name, scoping] of this.#scoping) {
      if (scoping.everywhere || !scoping.ingress) continue;
      const was = this.#everywhere.has(name);
      const now = was
        ? this.#isEverywhere(scoping)
        : unserved && (this.#unhosted.has(spiffeId) || scoping.exactIds.includes(spiffeId)) && this.#selectsUnserved(scoping, spiffeId);
      if (was === now) continue;
      if (now) this.#everywhere.add(name);
      else this.#everywhere.delete(name);
      changed = true;
    }
    if (changed) this.#bumpAll(version);
  }

  #setAgent(agentId: string, info: AgentInfo | undefined): void {
    for (const sel of this.#agents.get(agentId)?.selectors ?? []) {
      const set = this.#agentsBySelector.get(sel);
      set?.delete(agentId);
      if (set?.size === 0) this.#agentsBySelector.delete(sel);
    }
    if (info === undefined) {
      this.#agents.delete(agentId);
      return;
    }
    this.#agents.set(agentId, info);
    for (const sel of info.selectors) {
      let set = this.#agentsBySelector.get(sel);
      if (set === undefined) this.#agentsBySelector.set(sel, (set = new Set()));
      set.add(agentId);
    }
  }

  /** Agents that may serve `entry`: its parent, or every agent holding all its node selectors. */
  #ownersOf(entry: Entry | undefined): string[] {
    if (entry === undefined) return [];
    if (entry.parentId !== '*') return this.#agents.has(entry.parentId) ? [entry.parentId] : [];
    if (entry.nodeSelectors.length === 0) return [];
    return [...(this.#agentsBySelector.get(entry.nodeSelectors[0]!) ?? NONE)].filter((a) => entryBelongsTo(entry, this.#agents.get(a) as AgentInfo));
  }

  /**
   * Which agent serves which identity, from scratch (load): O(entries). Every agent's set counts as
   * changed at `version`.
   */
  #rebuildHosting(version: number): void {
    this.#entryHosts = new Map();
    this.#entryHosted = new Map();
    this.#selectedBy.clear();
    this.#unhosted = new Set();
    this.#rehost(this.#agents.keys(), [...this.#bySpiffeId.keys(), ...this.#workloads.keys()], version, false);
    this.#recomputeEverywhere(version);
    this.#bumpAll(version);
  }

  /**
   * Entries or agents changed: what `agents` serve is derived again (O(their entries)) and so is
   * everything about the identities they gained or lost and `ids`. An agent whose identities
   * changed gets a new policy set at `version`.
   */
  #rehost(agents: Iterable<string>, ids: Iterable<string | undefined>, version: number, review = true): void {
    const touched = new Set<string>();
    for (const id of ids) if (id !== undefined) touched.add(id);
    for (const agentId of new Set(agents)) {
      const agent = this.#agents.get(agentId);
      const before = this.#entryHosted.get(agentId) ?? NONE;
      // A revoked agent serves nothing: its SVIDs are revoked and it gets no stream.
      const after = agent === undefined || agent.revoked ? new Set<string>() : new Set(this.#entriesOf(agent).map((e) => e.spiffeId));
      for (const id of before) {
        if (after.has(id)) continue;
        const by = this.#entryHosts.get(id);
        by?.delete(agentId);
        if (by?.size === 0) this.#entryHosts.delete(id);
        touched.add(id);
      }
      for (const id of after) {
        if (before.has(id)) continue;
        let by = this.#entryHosts.get(id);
        if (by === undefined) this.#entryHosts.set(id, (by = new Set()));
        by.add(agentId);
        touched.add(id);
      }
      // The workloads registered through it are served or not with it.
      for (const id of this.#registeredBy.get(agentId) ?? []) touched.add(id);
      if (agent === undefined) {
        this.#entryHosted.delete(agentId);
        this.#scopeVersion.delete(agentId);
        this.#scopeParts.delete(agentId);
      } else {
        this.#entryHosted.set(agentId, after);
        if (!this.#scopeVersion.has(agentId) || !sameSet(before, after)) this.#bump(agentId, version);
      }
    }
    for (const id of touched) this.#reindex(id, version, review);
  }

  /**
   * One identity's served status, the policies concerning it (O(policies)) and its place among the
   * unserved identities are brought up to date; the agents serving it get a new set when the
   * policies concerning it changed.
   */
  #reindex(spiffeId: string, version: number, review: boolean): void {
    const wasHosted = this.#selectedBy.has(spiffeId);
    const hosted = this.#isHosted(spiffeId);
    if (hosted) {
      const prev = this.#selectedBy.get(spiffeId);
      const next = this.#selectsOf(spiffeId);
      this.#selectedBy.set(spiffeId, next);
      if (prev === undefined || !sameSet(prev, next)) for (const a of this.#hostsOf(spiffeId)) this.#bump(a, version);
    } else this.#selectedBy.delete(spiffeId);
    const wasUnhosted = this.#unhosted.delete(spiffeId);
    const unhosted = !hosted && (this.#workloads.has(spiffeId) || this.#bySpiffeId.has(spiffeId));
    if (unhosted) this.#unhosted.add(spiffeId);
    if (review && (wasUnhosted || unhosted || wasHosted !== hosted)) this.#reviewEverywhere(spiffeId, version);
  }

  /**
   * A policy was created, changed or deleted: its subject is evaluated once per served identity
   * (O(identities), not O(agents × policies)); the agents serving an identity it concerned or now
   * concerns get a new set, and every agent does when it is or was sent everywhere.
   */
  #policyChanged(name: string, version: number): void {
    const record = this.#policies.get(name);
    const scoping = record === undefined ? undefined : scopingOf(record);
    this.#setScoping(name, scoping);
    for (const [id, names] of this.#selectedBy) {
      const had = names.has(name);
      const has = scoping !== undefined && scoping.concerns(id, this.#viewOf(id));
      if (had !== has) {
        const next = new Set(names);
        if (has) next.add(name);
        else next.delete(name);
        this.#selectedBy.set(id, next);
      }
      if (had || has) for (const agentId of this.#hostsOf(id)) this.#bump(agentId, version);
    }
    const was = this.#everywhere.has(name);
    const now = scoping !== undefined && this.#isEverywhere(scoping);
    if (now) this.#everywhere.add(name);
    else this.#everywhere.delete(name);
    if (was || now) this.#bumpAll(version);
  }

  /**
   * A workload's attributes or registration changed: the policies concerning it are evaluated again
   * (O(policies), for this identity only); its agents get a new set when that changes.
   */
  #workloadChanged(spiffeId: string, agentBefore: string | undefined, version: number): void {
    this.#views.delete(spiffeId);
    const agentNow = this.#workloads.get(spiffeId)?.agentId;
    if (agentBefore !== agentNow) for (const a of [agentBefore, agentNow]) if (this.#serving(a)) this.#bump(a, version);
    this.#reindex(spiffeId, version, true);
  }

  /**
   * The policies part of one agent: the policies sent everywhere and those whose subject selects
   * an identity it serves. Built once per change of its set; agents whose sets changed at the same
   * version to the same policies share one frozen object (hashed and serialised once).
   */
  #policiesOf(agentId: string): Part<'policies'> {
    let part = this.#scopeParts.get(agentId);
    if (part !== undefined) return part;
    const names = new Set(this.#everywhere);
    for (const id of this.#hostedOf(agentId)) for (const n of this.#selectedBy.get(id) ?? this.#selectsOf(id)) names.add(n);
    const sorted = [...names].sort((a, b) => a.localeCompare(b));
    const version = this.#scopeVersion.get(agentId) ?? this.#version;
    const key = `${version}|${JSON.stringify(sorted)}`;
    part = this.#sharedScopes.get(key);
    if (part === undefined) {
      part = Object.freeze({ type: 'policies', resourceVersion: version, policies: Object.freeze(sorted.map((n) => this.#policies.get(n) as PolicyRecord)) });
      this.#sharedScopes.set(key, part);
    }
    this.#scopeParts.set(agentId, part);
    return part;
  }

  /** Names of the policies `agentId` is sent (tests, diagnostics). */
  policiesFor(agentId: string): string[] {
    if (!this.#agents.has(agentId)) return [];
    return this.#policiesOf(agentId).policies.map((p) => p.name);
  }

  // ---- ViewSource ----

  allowed(agentId: string): boolean {
    const a = this.#agents.get(agentId);
    return a !== undefined && !a.revoked;
  }

  #whole(agentId: string): Part<WholeType>[] {
    this.#bundlePart ??= Object.freeze({ type: 'bundle', resourceVersion: this.#kindVersion.bundle, bundle: this.#ca.bundle() });
    this.#revocationsPart ??= Object.freeze({
      type: 'revocations', resourceVersion: this.#kindVersion.revocations,
      revocations: Object.freeze(this.#revocations.map((r) => ({ serial: r.serial, spiffeId: r.spiffeId, expiresAt: r.expiresAt }))),
    });
    let entries = this.#entriesParts.get(agentId);
    if (entries === undefined) {
      const agent = this.#agents.get(agentId);
      const mine = agent === undefined ? [] : this.#entriesOf(agent);
      entries = Object.freeze({ type: 'entries', resourceVersion: this.#kindVersion.entries, entries: Object.freeze(mine) });
      this.#entriesParts.set(agentId, entries);
    }
    return [this.#bundlePart, entries, this.#policiesOf(agentId), this.#revocationsPart];
  }

  /**
   * Which workloads' attributes an agent needs: its own (subject selectors are evaluated on
   * them), and the peers of the policies that apply to its workloads wherever a rule looks at
   * peer attributes (a peer `selector`, `namespaces`, or a `source.namespace` condition). A peer
   * constrained by `spiffeIds` (fields AND together) needs only the workloads matching them;
   * without `spiffeIds` it could be any workload, so the agent gets every one.
   */
  #needOf(agentId: string): Need {
    let need = this.#needs.get(agentId);
    if (need !== undefined) return need;
    const agent = this.#agents.get(agentId);
    const own = new Set(agent === undefined ? [] : this.#entriesOf(agent).map((e) => e.spiffeId));
    const ownPrincipals = [...own].map(principalOf);
    const patterns = new Set<string>();
    let all = false;
    for (const record of this.#policies.values()) {
      const policy = record.policy as Policy | null;
      if (all || policy === null || policy.kind !== 'AccessPolicy' || own.size === 0) continue;
      const subject = policy.subject.spiffeIds;
      if (subject !== undefined && !ownPrincipals.some(spiffeMatcher(subject))) continue;
      for (const rule of [...(policy.ingress ?? []), ...(policy.egress ?? [])]) {
        const byNamespace = rule.when?.some((c) => c.key === 'source.namespace') === true;
        const peers: readonly Peer[] = rule.peers ?? [{}];
        for (const peer of peers) {
          const looksAtAttributes = peer.selector !== undefined || peer.namespaces !== undefined || peer.notNamespaces !== undefined || byNamespace;
          if (!looksAtAttributes) continue;
          if (peer.spiffeIds !== undefined && peer.spiffeIds.length > 0) for (const p of peer.spiffeIds) patterns.add(p);
          else all = true;
        }
      }
    }
    const ownKey = JSON.stringify([...own].sort());
    if (all) need = { all: true, key: `*|${ownKey}`, peerKey: '*', own, test: () => true, testPeer: () => true };
    else {
      const match = patterns.size === 0 ? (): boolean => false : spiffeMatcher([...patterns]);
      const peerKey = JSON.stringify([...patterns].sort());
      need = { all: false, key: `${peerKey}|${ownKey}`, peerKey, own, test: (id) => own.has(id) || match(principalOf(id)), testPeer: (id) => match(principalOf(id)) };
    }
    this.#needs.set(agentId, need);
    return need;
  }

  /**
   * The whole attribute table an agent needs: a reset with the peers it needs — one object per
   * set of peer patterns, so a fleet-wide change is built and serialised once — followed by its
   * own workloads as a small upsert.
   */
  #attributesFull(need: Need): Part<'attributes'>[] {
    let shared = this.#attrFull.get(need.peerKey);
    if (shared === undefined) {
      const rows = this.workloads().filter((w) => need.testPeer(w.spiffeId)).map((w) => ({ spiffeId: w.spiffeId, attributes: w.attributes }));
      shared = Object.freeze({ type: 'attributes', resourceVersion: this.#kindVersion.attributes, reset: true, workloads: Object.freeze(rows), removed: Object.freeze([]) });
      this.#attrFull.set(need.peerKey, shared);
    }
    if (need.all || need.own.size === 0) return [shared];
    const own = [...need.own].sort().flatMap((id) => {
      const w = this.#workloads.get(id);
      return w === undefined ? [] : [{ spiffeId: id, attributes: w.attributes }];
    });
    return [shared, Object.freeze({ type: 'attributes', resourceVersion: this.#kindVersion.attributes, reset: false, workloads: Object.freeze(own), removed: Object.freeze([]) })];
  }

  /** Delta after `from` restricted to what the agent needs; undefined when `from` predates what can be diffed. */
  #attributesDelta(from: number, need: Need): Part<'attributes'> | undefined {
    if (from < this.#loadedFrom) return undefined;
    const first = this.#deltas[0];
    if (first !== undefined && from < first.version - 1 && this.#deltas.length >= MAX_DELTAS) return undefined;
    const cacheKey = `${from}|${need.key}`;
    let part = this.#attrDeltaCache.get(cacheKey);
    if (part === undefined) {
      const ids = new Set<string>();
      for (const d of this.#deltas) if (d.version > from) for (const id of d.ids) if (need.all || need.test(id)) ids.add(id);
      const upserts: { spiffeId: string; attributes: AttributeSet }[] = [];
      const removed: string[] = [];
      for (const id of [...ids].sort()) {
        const w = this.#workloads.get(id);
        if (w === undefined) removed.push(id);
        else upserts.push({ spiffeId: id, attributes: w.attributes });
      }
      part = Object.freeze({ type: 'attributes', resourceVersion: this.#kindVersion.attributes, reset: false, workloads: Object.freeze(upserts), removed: Object.freeze(removed) });
      this.#attrDeltaCache.set(cacheKey, part);
    }
    return part;
  }

  /**
   * A (re)connecting agent gets the whole-state parts newer than `since` and, always, its
   * attribute table as a reset: what it needs may have changed while it was away, and the
   * table is limited to the workloads it needs.
   */
  initial(agentId: string, cursor: WatchCursor, since: number | undefined): readonly WatchMessage[] {
    if (!this.allowed(agentId)) return [];
    const out: WatchMessage[] = [];
    for (const part of this.#whole(agentId)) {
      if (since === undefined || part.resourceVersion > since) out.push(part);
      cursor.hashes.set(part.type, partHash(part));
    }
    const need = this.#needOf(agentId);
    cursor.attributesVersion = this.#kindVersion.attributes;
    cursor.needKey = need.key;
    return inOrder(out, this.#attributesFull(need));
  }

  catchUp(agentId: string, cursor: WatchCursor): readonly WatchMessage[] {
    const out: WatchMessage[] = [];
    for (const part of this.#whole(agentId)) {
      const hash = partHash(part);
      if (cursor.hashes.get(part.type) !== hash) {
        cursor.hashes.set(part.type, hash);
        out.push(part);
      }
    }
    const need = this.#needOf(agentId);
    let attributes: Part<'attributes'>[] = [];
    if (cursor.needKey !== need.key) {
      // New policies or entries widen or narrow what it needs: resend its table.
      attributes = this.#attributesFull(need);
    } else if (cursor.attributesVersion !== this.#kindVersion.attributes) {
      const from = cursor.attributesVersion ?? -1;
      const delta = from < 0 ? undefined : this.#attributesDelta(from, need);
      if (delta === undefined) attributes = this.#attributesFull(need);
      else if (delta.workloads.length > 0 || delta.removed.length > 0) attributes = [delta];
    }
    cursor.needKey = need.key;
    cursor.attributesVersion = this.#kindVersion.attributes;
    return inOrder(out, attributes);
  }
}

interface Need {
  /** Every workload is needed (a peer judged by attributes without SPIFFE ID patterns). */
  readonly all: boolean;
  /** Identifies the whole need (peers and own workloads). */
  readonly key: string;
  /** Identifies the peer part: agents with the same peer patterns share its parts. */
  readonly peerKey: string;
  readonly own: ReadonlySet<string>;
  readonly test: (spiffeId: string) => boolean;
  readonly testPeer: (spiffeId: string) => boolean;
}

/**
 * Whole-state parts and attribute parts in version order; the attribute parts keep their own
 * order (reset before the upsert that completes it) and go before newer whole-state parts, so an
 * agent has the peer attributes a new policy needs when it compiles it.
 */
function inOrder(whole: WatchMessage[], attributes: readonly Part<'attributes'>[]): WatchMessage[] {
  const v = attributes[0]?.resourceVersion ?? Number.POSITIVE_INFINITY;
  const sorted = [...whole].sort((a, b) => a.resourceVersion - b.resourceVersion);
  const at = sorted.findIndex((m) => m.resourceVersion > v);
  return at < 0 ? [...sorted, ...attributes] : [...sorted.slice(0, at), ...attributes, ...sorted.slice(at)];
}

function principalOf(spiffeId: string): string {
  return spiffeId.startsWith('spiffe://') ? spiffeId.slice('spiffe://'.length) : spiffeId;
}

function policyFromStore(p: { name: string; yaml: string; parsed: unknown; version: number }): PolicyRecord {
  const parsed = (p.parsed ?? {}) as { kind?: unknown; document?: unknown; policy?: unknown };
  return { kind: typeof parsed.kind === 'string' ? parsed.kind : 'unknown', name: p.name, document: parsed.document ?? null, policy: parsed.policy ?? null, version: p.version };
}

/**
 * Which agents' needs a policy can be part of (mirrors {@link RegistryView#needOf}): `none` unless
 * it is an AccessPolicy with a rule judging peers by attributes; then the agents whose workloads
 * its subject's SPIFFE ID patterns match, or `all` without patterns (or when unreadable).
 */
function needShapeOf(record: PolicyRecord): 'none' | 'all' | ((principal: string) => boolean) {
  const policy = record.policy as Policy | null;
  if (policy === null || typeof policy !== 'object' || policy.kind !== 'AccessPolicy') return 'none';
  try {
    let looks = false;
    for (const rule of [...(policy.ingress ?? []), ...(policy.egress ?? [])]) {
      if (rule.when?.some((c) => c.key === 'source.namespace') === true) looks = true;
      for (const peer of rule.peers ?? []) if (peer.selector !== undefined || peer.namespaces !== undefined || peer.notNamespaces !== undefined) looks = true;
    }
    if (!looks) return 'none';
    const ids = policy.subject.spiffeIds;
    return ids === undefined ? 'all' : spiffeMatcher(ids);
  } catch {
    return 'all';
  }
}

const NONE: ReadonlySet<string> = new Set();

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** How one policy is scoped to agents (ADR 0076). */
interface Scoping {
  /** Every agent gets it, whatever it serves. */
  readonly everywhere: boolean;
  /** An AccessPolicy with ingress rules: also sent everywhere when it selects an identity no agent serves. */
  readonly ingress: boolean;
  /** The subject's SPIFFE ID patterns without a wildcard, as full SPIFFE IDs. */
  readonly exactIds: readonly string[];
  /** The subject, exactly as the agent's engine evaluates it (SPIFFE ID patterns AND selector). */
  readonly selects: (spiffeId: string, view: AttributeView) => boolean;
  /** The subject selects it, or an ingress rule names it as a caller by SPIFFE ID. */
  readonly concerns: (spiffeId: string, view: AttributeView) => boolean;
  /** Every SPIFFE ID `concerns` can hold for, when the subject and the callers named are all exact IDs; else undefined. */
  readonly keys: readonly string[] | undefined;
}

const EVERYWHERE: Scoping = Object.freeze({ everywhere: true, ingress: false, exactIds: Object.freeze([]), selects: () => true, concerns: () => true, keys: undefined });

const exact = (p: string): boolean => !p.includes('*');
const fullId = (p: string): string => (p.startsWith('spiffe://') ? p : `spiffe://${p}`);

/**
 * Which agents a policy goes to. Every kind goes to the agents serving a workload its subject
 * selects: that is where its subject's decisions are made (ingress, egress and mTLS for the
 * workload's own connections, process and file events of its own processes). Beyond that:
 * - an AccessPolicy goes to the agents serving a caller one of its ingress rules names by SPIFFE
 *   ID: the caller's agent evaluates the destination's ingress too and refuses before any byte
 *   leaves (ADR 0070), e.g. when a scan disqualifies the caller it names;
 * - an AccessPolicy with `egress` rules goes to every agent: the destination's agent evaluates the
 *   caller's egress on every inbound connection (ADR 0070), which is what still holds a caller
 *   whose own agent was bypassed (a compromised host with its SVID), and the server cannot know
 *   who may connect to whom;
 * - an AccessPolicy with `ingress` rules whose subject selects a registered identity no agent
 *   serves, or names one exactly, goes to every agent: the callers are the only place those rules
 *   can be enforced (served identities enforce their own ingress, fail closed);
 * - a record whose policy cannot be read here (unknown kind, malformed subject) goes everywhere.
 */
function scopingOf(record: PolicyRecord): Scoping {
  const policy = record.policy as Policy | null;
  if (policy === null || typeof policy !== 'object') return EVERYWHERE;
  if (policy.kind !== 'AccessPolicy' && policy.kind !== 'RuntimePolicy' && policy.kind !== 'MutualTLSPolicy') return EVERYWHERE;
  try {
    const subject = policy.subject as Policy['subject'] | undefined;
    if (subject === undefined || subject === null || !Array.isArray(subject.selector?.requirements)) return EVERYWHERE;
    if (subject.spiffeIds !== undefined && (!Array.isArray(subject.spiffeIds) || !subject.spiffeIds.every((p) => typeof p === 'string'))) return EVERYWHERE;
    const selector = compileSelector(subject.selector);
    const ids = subject.spiffeIds === undefined ? undefined : spiffeMatcher(subject.spiffeIds);
    const selects = (spiffeId: string, view: AttributeView): boolean => (ids === undefined || ids(principalOf(spiffeId))) && selector(view);
    const subjectKeys = subject.spiffeIds !== undefined && subject.spiffeIds.every(exact) ? subject.spiffeIds.map(fullId) : undefined;
    if (policy.kind === 'AccessPolicy' && policy.egress !== undefined) return { ...EVERYWHERE, selects, concerns: selects, keys: subjectKeys };
    const exactIds = (subject.spiffeIds ?? []).filter(exact).map(fullId);
    const named = policy.kind === 'AccessPolicy' ? (policy.ingress ?? []).flatMap((r) => (r.peers ?? []).flatMap((peer) => peer.spiffeIds ?? [])) : [];
    const caller = named.length === 0 ? undefined : spiffeMatcher(named);
    const concerns = caller === undefined ? selects : (spiffeId: string, view: AttributeView): boolean => selects(spiffeId, view) || caller(principalOf(spiffeId));
    const keys = subjectKeys !== undefined && named.every(exact) ? [...subjectKeys, ...named.map(fullId)] : undefined;
    return { everywhere: false, ingress: policy.kind === 'AccessPolicy' && policy.ingress !== undefined, exactIds, selects, concerns, keys };
  } catch {
    return EVERYWHERE;
  }
}
