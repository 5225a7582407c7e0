/**
 * The server's in-memory view of the registry: entries, policies, agents, workloads with their
 * attributes, and revocations, as of one resource version of the store's change log. It is
 * loaded once, then kept current by reading only the changes after its version (the change log
 * is the single source of truth, so every replica on one PostgreSQL converges on the same view).
 *
 * It is also the {@link ViewSource} of the watch stream. Whole-state parts (bundle, entries,
 * policies, revocations) are resent when their content changes; workload attributes go only
 * for the workloads an agent needs (its own and the peers its policies judge by attributes),
 * as a `reset` on connect or when that need changes, then as deltas.
 */
import type { AgentInfo, Entry, PolicyRecord, WatchMessage, Workload } from '../../api/types.js';
import { mergeAttributes, type AttributeSet } from '../../identity/attributes.js';
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
  #policiesPart: Part<'policies'> | undefined;
  #revocationsPart: Part<'revocations'> | undefined;
  #entriesParts = new Map<string, Part<'entries'>>();
  readonly #attrFull = new Map<string, Part<'attributes'>>();
  readonly #attrDeltaCache = new Map<string, Part<'attributes'>>();
  /** What each agent needs of the attribute table; recomputed when entries, agents or policies change. */
  readonly #needs = new Map<string, Need>();

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
    for (const a of agents) this.#agents.set(a.agentId, await this.#agentInfo(a));
    this.#workloads.clear();
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
          this.#indexEntry(c.resourceId, e === null ? undefined : entryFromStore(e, this.#trustDomain, this.#nodeAttestors));
          this.#kindVersion.entries = c.version;
          touch('entries');
          break;
        }
        case 'policy': {
          const p = await this.#store.policies.get(c.resourceId);
          if (p === null) this.#policies.delete(c.resourceId);
          else this.#policies.set(p.name, policyFromStore(p));
          this.#kindVersion.policies = c.version;
          touch('policies');
          break;
        }
        case 'agent': {
          const a = await this.#store.agents.get(c.resourceId);
          if (a === null) this.#agents.delete(c.resourceId);
          else this.#agents.set(a.agentId, await this.#agentInfo(a));
          this.#kindVersion.entries = c.version; // an agent's selectors decide which entries it sees
          touch('entries');
          break;
        }
        case 'workload':
        case 'attributes': {
          if (this.#agents.has(c.resourceId)) {
            const a = await this.#store.agents.get(c.resourceId);
            if (a !== null) this.#agents.set(a.agentId, await this.#agentInfo(a));
          }
          if (await this.#reloadWorkload(c.resourceId)) markAttr(c.version, c.resourceId);
          break;
        }
        case 'image': {
          // Image facts (scans, provenance) are read once and merged into every workload of the
          // image with the own attributes already held: three queries, whatever the fleet size.
          this.#images.delete(c.resourceId);
          const sets = await this.#imageSets(c.resourceId);
          for (const w of await this.#store.workloads.list({ imageDigest: c.resourceId })) {
            if (!this.#own.has(w.spiffeId)) this.#own.set(w.spiffeId, await this.#store.attributes.own(w.spiffeId));
            this.#setWorkload(w, sets);
            markAttr(c.version, w.spiffeId);
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
    if (what === 'all' || what === 'policies' || what === 'entries') this.#needs.clear();
    if (what === 'all' || what === 'policies') this.#policiesPart = undefined;
    if (what === 'all' || what === 'revocations') this.#revocationsPart = undefined;
    if (what === 'all' || what === 'entries') this.#entriesParts.clear();
    if (what === 'all' || what === 'attributes') {
      this.#attrFull.clear();
      this.#attrDeltaCache.clear();
    }
  }

  // ---- ViewSource ----

  allowed(agentId: string): boolean {
    const a = this.#agents.get(agentId);
    return a !== undefined && !a.revoked;
  }

  #whole(agentId: string): Part<WholeType>[] {
    this.#bundlePart ??= Object.freeze({ type: 'bundle', resourceVersion: this.#kindVersion.bundle, bundle: this.#ca.bundle() });
    this.#policiesPart ??= Object.freeze({ type: 'policies', resourceVersion: this.#kindVersion.policies, policies: Object.freeze(this.policies()) });
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
    return [this.#bundlePart, entries, this.#policiesPart, this.#revocationsPart];
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
