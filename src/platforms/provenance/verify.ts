/**
 * Verifying SLSA provenance: DSSE signature against configured keys first (nothing in the
 * payload is read before that), then the in-toto Statement and SLSA predicate, then the
 * `build.*` attributes for every subject digest.
 *
 * `build.verified` is true when the signature verified with a configured key and, if a
 * trusted-builder list is configured, the builder id is on it. Any failure throws: the caller
 * attaches no build attributes at all.
 *
 * @example
 * const verifier = new ProvenanceVerifier({ keys: [{ keyid: 'ci', publicKey: pem }], trustedBuilders: ['https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0'] });
 * const result = verifier.verify(envelopeText, clock.now());
 * for (const digest of result.subjectDigests) await store.images.putProvenance({ imageDigest: digest, attributes: result.attributes, statement: result.facts, verified: result.verified });
 */
import type { Attribute, AttributeSet } from '../../identity/attributes.js';
import { preAuthEncoding, readEnvelope } from './dsse.js';
import { ProvenanceError } from './errors.js';
import { loadVerificationKey, type ProvenanceKeyConfig, type VerificationKey } from './keys.js';
import { readStatement, type BuildFacts } from './statement.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const PROVENANCE_SOURCE = 'provenance:slsa';
export const DEFAULT_MAX_PROVENANCE_BYTES = 16 * 1024 * 1024;

export interface ProvenanceVerifierConfig {
  readonly keys: readonly ProvenanceKeyConfig[];
  /** Distinct keys that must have signed (default 1). */
  readonly threshold?: number;
  /** Builder ids whose provenance counts as verified; absent = any builder signed by a key. */
  readonly trustedBuilders?: readonly string[];
  readonly maxBytes?: number;
}

export interface ProvenanceResult {
  readonly facts: BuildFacts;
  readonly subjectDigests: readonly string[];
  /** keyids (or key indexes) that verified. */
  readonly signedBy: readonly string[];
  readonly verified: boolean;
  readonly attributes: AttributeSet;
}

export class ProvenanceVerifier {
  readonly #keys: readonly VerificationKey[];
  readonly #threshold: number;
  readonly #trustedBuilders: ReadonlySet<string> | null;
  readonly #maxBytes: number;

  constructor(config: ProvenanceVerifierConfig) {
    if (!Array.isArray(config.keys) || config.keys.length === 0) throw new ProvenanceError('ERR_PROVENANCE_KEY', 'no provenance verification key is configured');
    this.#keys = config.keys.map((k, i) => loadVerificationKey(k, i));
    this.#threshold = config.threshold ?? 1;
    if (!Number.isSafeInteger(this.#threshold) || this.#threshold < 1 || this.#threshold > this.#keys.length) {
      throw new ProvenanceError('ERR_PROVENANCE_KEY', `threshold must be between 1 and the number of keys (${this.#keys.length})`);
    }
    this.#trustedBuilders = config.trustedBuilders ? new Set(config.trustedBuilders) : null;
    this.#maxBytes = config.maxBytes ?? DEFAULT_MAX_PROVENANCE_BYTES;
  }

  /** Verifies an envelope (JSON text, bytes, or parsed) observed at `observedAt`. */
  verify(input: string | Uint8Array | object, observedAt: number): ProvenanceResult {
    const doc = typeof input === 'object' && !(input instanceof Uint8Array) ? input : this.#parse(input);
    const env = readEnvelope(doc);
    if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
      throw new ProvenanceError('ERR_PROVENANCE_PAYLOAD_TYPE', `payloadType must be ${IN_TOTO_PAYLOAD_TYPE}`);
    }
    const pae = preAuthEncoding(env.payloadType, env.payload);
    const signers = new Set<number>();
    for (const sig of env.signatures) {
      // keyid is a hint: use the keys it names when it names any, otherwise try every key.
      const named = sig.keyid === '' ? [] : this.#keys.flatMap((k, i) => (k.keyid === sig.keyid ? [i] : []));
      const candidates = named.length > 0 ? named : this.#keys.map((_, i) => i);
      for (const i of candidates) {
        if (!signers.has(i) && (this.#keys[i] as VerificationKey).verify(pae, sig.sig)) {
          signers.add(i);
          break;
        }
      }
    }
    if (signers.size < this.#threshold) {
      throw new ProvenanceError('ERR_PROVENANCE_SIGNATURE', signers.size === 0 ? 'no signature verifies with a configured key' : `only ${signers.size} of ${this.#threshold} required keys signed`);
    }
    const facts = readStatement(env.payload);
    const verified = this.#trustedBuilders === null || this.#trustedBuilders.has(facts.builder);
    const a = (value: Attribute['value']): Attribute => Object.freeze({ value, source: PROVENANCE_SOURCE, observedAt });
    const attributes: Record<string, Attribute> = { 'build.builder': a(facts.builder), 'build.verified': a(verified) };
    if (facts.repo !== null) attributes['build.repo'] = a(facts.repo);
    if (facts.commit !== null) attributes['build.commit'] = a(facts.commit);
    return {
      facts,
      subjectDigests: facts.subjectDigests,
      signedBy: [...signers].sort().map((i) => (this.#keys[i] as VerificationKey).keyid || `#${i}`),
      verified,
      attributes: Object.freeze(attributes),
    };
  }

  /**
   * Verifies every envelope of an in-toto JSON Lines bundle (`*.intoto.jsonl`, as
   * slsa-github-generator publishes), one per non-empty line; any bad line fails the whole file.
   */
  verifyJsonLines(text: string, observedAt: number): ProvenanceResult[] {
    if (text.length > this.#maxBytes) throw new ProvenanceError('ERR_PROVENANCE_TOO_LARGE', `provenance larger than ${this.#maxBytes} bytes`);
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) throw new ProvenanceError('ERR_PROVENANCE_JSON', 'no envelope in the file');
    if (lines.length > 1024) throw new ProvenanceError('ERR_PROVENANCE_TOO_LARGE', 'more than 1024 envelopes');
    return lines.map((line) => this.verify(line, observedAt));
  }

  #parse(input: string | Uint8Array): unknown {
    const size = typeof input === 'string' ? (input.length > this.#maxBytes ? Infinity : new TextEncoder().encode(input).byteLength) : input.byteLength;
    if (size > this.#maxBytes) throw new ProvenanceError('ERR_PROVENANCE_TOO_LARGE', `provenance larger than ${this.#maxBytes} bytes`);
    try {
      return JSON.parse(typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input));
    } catch (cause) {
      throw new ProvenanceError('ERR_PROVENANCE_JSON', 'provenance is not valid JSON', { cause });
    }
  }
}
