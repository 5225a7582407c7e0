/**
 * Identity attributes. A workload's own attributes (from attestors, entries) are stored per
 * (workload, source) and replaced per source atomically; image-level attributes (scans,
 * provenance) are stored once per image digest and apply to every workload running that image,
 * so a new scan updates all of them with one write.
 */
import { isSpiffeId } from '../../events/types.js';
import { isAttributeKey, mergeAttributes, type Attribute, type AttributeSet, type AttributeValue } from '../../identity/attributes.js';
import type { Scope } from '../scope.js';
import { IMAGE_DIGEST_RE } from './agents.js';
import { invalid, requireString, toJson } from './json.js';

const MAX_ATTRIBUTES = 1024;
const MAX_VALUE_BYTES = 64 * 1024;

function checkValue(key: string, value: unknown): AttributeValue {
  const ok = typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
    || (Array.isArray(value) && value.every((v) => typeof v === 'string'));
  if (!ok) throw invalid(`attributes.${key}`, 'value must be a string, finite number, boolean or string list');
  return value as AttributeValue;
}

/** Validates an attribute set for one source and returns it frozen. */
export function checkAttributeSet(set: AttributeSet, source: string | null): AttributeSet {
  const entries = Object.entries(set);
  if (entries.length > MAX_ATTRIBUTES) throw invalid('attributes', `more than ${MAX_ATTRIBUTES} attributes`);
  const out: Record<string, Attribute> = {};
  for (const [key, attr] of entries) {
    if (!isAttributeKey(key)) throw invalid(`attributes.${key}`, 'not a namespaced attribute key');
    const value = checkValue(key, attr.value);
    if (toJson(value).length > MAX_VALUE_BYTES) throw invalid(`attributes.${key}`, 'value too large');
    if (source !== null && attr.source !== source) throw invalid(`attributes.${key}`, `source must be ${source}`);
    if (!Number.isSafeInteger(attr.observedAt) || attr.observedAt < 0) throw invalid(`attributes.${key}`, 'observedAt must be epoch milliseconds');
    out[key] = Object.freeze({ value, source: attr.source, observedAt: attr.observedAt });
  }
  return Object.freeze(out);
}

export function parseAttributeSet(text: string): AttributeSet {
  return Object.freeze(JSON.parse(text) as Record<string, Attribute>);
}

export class AttributeRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Replaces everything `source` asserted about a workload with `set`, in one transaction (an
   * empty set removes the source's attributes). Readers never see a half-replaced set.
   */
  async replaceForSource(spiffeId: string, source: string, set: AttributeSet): Promise<void> {
    if (!isSpiffeId(spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
    requireString('source', source, 128);
    const checked = checkAttributeSet(set, source);
    return this.#scope.atomic(async (s) => {
      await s.db.deleteFrom('attributes').where('spiffe_id', '=', spiffeId).where('source', '=', source).execute();
      const rows = Object.entries(checked).map(([key, a]) => ({ spiffe_id: spiffeId, source, key, value: toJson(a.value), observed_at: a.observedAt }));
      for (let i = 0; i < rows.length; i += 200) await s.db.insertInto('attributes').values(rows.slice(i, i + 200)).execute();
      await s.recordChange('attributes', spiffeId, 'upsert');
    });
  }

  /** The workload's own attributes (every source merged; the later observation wins per key). */
  async own(spiffeId: string): Promise<AttributeSet> {
    const rows = await this.#scope.read((db) => db.selectFrom('attributes').selectAll().where('spiffe_id', '=', spiffeId).execute());
    const bySource = new Map<string, Record<string, Attribute>>();
    for (const r of rows) {
      const set = bySource.get(r.source) ?? {};
      set[r.key] = { value: JSON.parse(r.value) as AttributeValue, source: r.source, observedAt: Number(r.observed_at) };
      bySource.set(r.source, set);
    }
    return mergeAttributes(...bySource.values());
  }

  /**
   * The full identity document's attributes: the workload's own, plus the scans and provenance
   * of its image digest, read in one transaction so the view is consistent.
   */
  async forWorkload(spiffeId: string): Promise<AttributeSet> {
    return this.#scope.snapshot(async (s) => {
      const repo = new AttributeRepository(s);
      const own = await repo.own(spiffeId);
      const wl = await s.db.selectFrom('workloads').select('image_digest').where('spiffe_id', '=', spiffeId).executeTakeFirst();
      const digest = wl?.image_digest ?? null;
      if (digest === null) return own;
      const scans = await s.db.selectFrom('image_scans').select('attributes').where('image_digest', '=', digest).execute();
      const prov = await s.db.selectFrom('provenance').select('attributes').where('image_digest', '=', digest).executeTakeFirst();
      return mergeAttributes(...scans.map((r) => parseAttributeSet(r.attributes)), ...(prov ? [parseAttributeSet(prov.attributes)] : []), own);
    });
  }
}

export { IMAGE_DIGEST_RE };
