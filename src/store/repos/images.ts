/** Image-level facts keyed by image digest: vulnerability scans (one current report per scanner) and build provenance. */
import type { AttributeSet } from '../../identity/attributes.js';
import type { Scope } from '../scope.js';
import { IMAGE_DIGEST_RE } from './agents.js';
import { checkAttributeSet, parseAttributeSet } from './attributes.js';
import { fromJson, invalid, requireString, toJson } from './json.js';

export interface ImageScan {
  readonly imageDigest: string;
  /** `trivy`, `grype`, `cyclonedx-vex`, ... */
  readonly scanner: string;
  readonly attributes: AttributeSet;
  /** Parser-produced summary (counts, CVE list); JSON. */
  readonly summary: unknown;
  readonly importedAt: number;
}

export interface ImageProvenance {
  readonly imageDigest: string;
  readonly attributes: AttributeSet;
  /** The verified in-toto statement, for display. */
  readonly statement: unknown;
  readonly verified: boolean;
  readonly importedAt: number;
}

function checkDigest(digest: string): string {
  if (typeof digest !== 'string' || !IMAGE_DIGEST_RE.test(digest)) throw invalid('imageDigest', 'expected algorithm:hex');
  return digest;
}

export class ImageRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Stores the current scan of an image by one scanner, replacing the previous one. */
  async putScan(scan: { imageDigest: string; scanner: string; attributes: AttributeSet; summary?: unknown }): Promise<ImageScan> {
    const digest = checkDigest(scan.imageDigest);
    requireString('scanner', scan.scanner, 64);
    const attributes = checkAttributeSet(scan.attributes, null);
    return this.#scope.atomic(async (s) => {
      const row = { image_digest: digest, scanner: scan.scanner, attributes: toJson(attributes), summary: toJson(scan.summary ?? null), imported_at: s.now };
      await s.db.insertInto('image_scans').values(row)
        .onConflict((oc) => oc.columns(['image_digest', 'scanner']).doUpdateSet({ attributes: row.attributes, summary: row.summary, imported_at: row.imported_at }))
        .execute();
      await s.recordChange('image', digest, 'upsert');
      return { imageDigest: digest, scanner: scan.scanner, attributes, summary: scan.summary ?? null, importedAt: row.imported_at };
    });
  }

  async scans(imageDigest: string): Promise<ImageScan[]> {
    const rows = await this.#scope.read((db) => db.selectFrom('image_scans').selectAll().where('image_digest', '=', imageDigest).orderBy('scanner').execute());
    return rows.map((r) => ({ imageDigest: r.image_digest, scanner: r.scanner, attributes: parseAttributeSet(r.attributes), summary: fromJson(r.summary), importedAt: Number(r.imported_at) }));
  }

  async putProvenance(p: { imageDigest: string; attributes: AttributeSet; statement: unknown; verified: boolean }): Promise<ImageProvenance> {
    const digest = checkDigest(p.imageDigest);
    const attributes = checkAttributeSet(p.attributes, null);
    return this.#scope.atomic(async (s) => {
      const row = { image_digest: digest, attributes: toJson(attributes), statement: toJson(p.statement), verified: p.verified ? 1 : 0, imported_at: s.now };
      await s.db.insertInto('provenance').values(row)
        .onConflict((oc) => oc.column('image_digest').doUpdateSet({ attributes: row.attributes, statement: row.statement, verified: row.verified, imported_at: row.imported_at }))
        .execute();
      await s.recordChange('image', digest, 'upsert');
      return { imageDigest: digest, attributes, statement: p.statement, verified: p.verified, importedAt: row.imported_at };
    });
  }

  async provenance(imageDigest: string): Promise<ImageProvenance | null> {
    const r = await this.#scope.read((db) => db.selectFrom('provenance').selectAll().where('image_digest', '=', imageDigest).executeTakeFirst());
    return r ? { imageDigest: r.image_digest, attributes: parseAttributeSet(r.attributes), statement: fromJson(r.statement), verified: Number(r.verified) === 1, importedAt: Number(r.imported_at) } : null;
  }
}
