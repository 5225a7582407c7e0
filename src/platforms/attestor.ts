/**
 * The attestation plug-in point: how an agent or a workload proves what it is.
 *
 * ## Contract (every implementation passes test/unit/platforms/attestors/contract.ts)
 *
 * Server side, {@link Attestor.attest}`(evidence, ctx)`:
 * 1. `evidence` is untrusted JSON (already size-capped by the caller). It is validated before
 *    anything else; a wrong shape rejects with `ERR_ATTEST_MALFORMED` naming the field.
 * 2. Verification fails closed. Each failure has one stable code and never a partial result:
 *    forged → `ERR_ATTEST_FORGED`, expired → `ERR_ATTEST_EXPIRED`, one-time evidence used twice →
 *    `ERR_ATTEST_REPLAYED`, contradiction with verified facts → `ERR_ATTEST_MISMATCH`, subject
 *    outside the allow-list → `ERR_ATTEST_NOT_ALLOWED`, workload/hint attestor without an
 *    acceptable node attestation → `ERR_ATTEST_NOT_BOUND`, platform API down →
 *    `ERR_ATTEST_UPSTREAM`. `attest` rejects with nothing but a {@link PlatformError} whose code
 *    starts with `ERR_ATTEST_`.
 * 3. On success it returns a frozen {@link AttestationResult}: SPIRE-style selectors
 *    `<attestor>:<key>:<value>` (sorted, unique, typed by the attestor's own name), identity
 *    attributes (namespaced keys, `source` = `attestor:<name>`, `observedAt` = `ctx.clock.now()`),
 *    and a stable agent id: the same subject always yields the same id.
 * 4. Only verified facts become selectors or attributes. Hints (vSphere) become attributes only
 *    when bound to a node attested by a proof attestor.
 * 5. State (single-use tokens, one-time instance ids) goes only through {@link AttestationState},
 *    whose operations are atomic, so two replicas racing on one token let exactly one win.
 * 6. No secret (join token, projected service-account token) appears in a result, an error
 *    message, `details`, or a log line.
 *
 * Agent side, {@link EvidenceCollector.collect}: gathers the evidence of one attestor from the
 * local platform (IMDS, the projected token file, ECS task metadata, DMI, the calling process).
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Attribute, AttributeSet, AttributeValue } from '../identity/attributes.js';
import { isAttributeKey } from '../identity/attributes.js';
import { PlatformError } from './errors.js';

/** `node` attestors prove a machine/agent; `workload` attestors describe what runs under one. */
export type AttestorKind = 'node' | 'workload';

/** The names of the built-in attestors; also the selector type each one emits. */
export type AttestorName = 'join_token' | 'x509pop' | 'k8s_psat' | 'aws_iid' | 'ecs' | 'vsphere' | 'host';

/** The verified outcome of one attestation. Frozen. */
export interface AttestationResult {
  /** The attestor that produced it. */
  readonly attestor: string;
  /**
   * Stable SPIFFE ID of the attested agent: `spiffe://<td>/ward/agent/<attestor>/<subject...>`.
   * Workload attestors return the id of the node they are bound to.
   */
  readonly agentId: string;
  /** `<attestor>:<key>:<value>`, sorted and unique; registration entries match on these. */
  readonly selectors: readonly string[];
  /** Identity attributes, namespaced (`k8s.namespace`, `aws.account`, `vm.tag.env`, ...). */
  readonly attributes: AttributeSet;
  /** When the evidence stops being valid (ms since epoch), if it has a lifetime. */
  readonly expiresAt?: number;
}

/** What a workload or hint attestor is bound to: a node attestation the server already accepted. */
export interface AttestedNode {
  readonly attestor: string;
  readonly agentId: string;
  readonly selectors: readonly string[];
  readonly attributes: AttributeSet;
}

/** Outcome of {@link AttestationState.redeemCredential}. */
export type RedeemOutcome =
  | { readonly outcome: 'redeemed'; readonly record: CredentialRecord }
  | { readonly outcome: 'used'; readonly record: CredentialRecord }
  | { readonly outcome: 'unknown' };

/** A one-time credential as stored: only its hash is the key; never the secret itself. */
export interface CredentialRecord {
  /** ms since epoch after which the credential is expired. */
  readonly expiresAt: number;
  /** Non-secret facts bound to the credential at issue time (hints, SPIFFE ID hint...). */
  readonly data: Readonly<Record<string, string>>;
}

/**
 * The narrow persistence attestors need. Every operation is atomic (the SQL binding uses one
 * statement / transaction per call), so concurrent attestations of the same key let one win.
 */
export interface AttestationState {
  /**
   * Records `(kind, key)` as used until `expiresAt`. Resolves true when this call recorded it,
   * false when it was already recorded (a replay).
   */
  consumeOnce(kind: string, key: string, expiresAt: number): Promise<boolean>;
  /** Stores a one-time credential under `(kind, keyHash)`; rejects if the key exists. */
  putCredential(kind: string, keyHash: string, record: CredentialRecord): Promise<void>;
  /**
   * Marks the credential used and returns it (`redeemed`), or reports it was already used
   * (`used`) or never existed (`unknown`). Expiry is judged by the caller from `record.expiresAt`.
   */
  redeemCredential(kind: string, keyHash: string, now: number): Promise<RedeemOutcome>;
}

/** What the server hands an attestor for one attestation. */
export interface AttestContext {
  readonly clock: Clock;
  /** The server's trust domain, e.g. `example.org`. */
  readonly trustDomain: string;
  readonly state: AttestationState;
  /** For workload and hint attestors: the node attestation of the agent that sent the evidence. */
  readonly node?: AttestedNode;
  readonly signal?: AbortSignal;
}

/** A server-side attestor. Implementations live in `src/platforms/<platform>/`. */
export interface Attestor {
  readonly name: AttestorName;
  readonly kind: AttestorKind;
  /** Verifies untrusted `evidence` (see the contract at the top of this file). */
  attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult>;
  /**
   * The agent ID `evidence` would yield if it attests, computed without verifying or consuming
   * anything; only for attestors whose ID follows from the evidence alone (join_token). Lets the
   * server check that a CSR names that ID before single-use evidence is spent.
   */
  predictAgentId?(evidence: unknown, trustDomain: string): string;
}

/** An agent-side collector: gathers one attestor's evidence from the local platform. */
export interface EvidenceCollector<E = unknown> {
  readonly name: AttestorName;
  collect(signal?: AbortSignal): Promise<E>;
}

// ---------------------------------------------------------------------------------------------
// Helpers every implementation uses, so results look the same whoever produced them.

const TRUST_DOMAIN_RE = /^[a-z0-9._-]{1,255}$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]{1,128}$/;

/** Throws ERR_ATTEST_MALFORMED with the field path. */
export function malformed(path: string, message: string): PlatformError {
  return new PlatformError('ERR_ATTEST_MALFORMED', `${path}: ${message}`, { details: { path } });
}

/**
 * A SPIFFE-path-safe form of one segment: kept as is when it is made only of SPIFFE path
 * characters, otherwise replaced by `h-` + 32 hex chars of its SHA-256 (deterministic).
 */
export function pathSegment(value: string): string {
  if (SEGMENT_RE.test(value) && value !== '.' && value !== '..' && !value.startsWith('h-')) return value;
  return `h-${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 32)}`;
}

/**
 * The stable agent SPIFFE ID for an attestor and subject segments.
 *
 * @example agentSpiffeId('example.org', 'aws_iid', ['123456789012', 'us-west-2', 'i-0abc'])
 * // 'spiffe://example.org/ward/agent/aws_iid/123456789012/us-west-2/i-0abc'
 */
export function agentSpiffeId(trustDomain: string, attestor: string, subject: readonly string[]): string {
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    throw new PlatformError('ERR_ATTEST_UPSTREAM', 'attest context has an invalid trust domain', { details: { path: 'trustDomain' } });
  }
  return `spiffe://${trustDomain}/ward/agent/${[attestor, ...subject].map(pathSegment).join('/')}`;
}

/** Collects selectors and attributes for one result, then freezes them. */
export class ResultBuilder {
  readonly #attestor: string;
  readonly #observedAt: number;
  readonly #selectors = new Set<string>();
  readonly #attributes: Record<string, Attribute> = {};

  constructor(attestor: AttestorName, observedAt: number) {
    this.#attestor = attestor;
    this.#observedAt = observedAt;
  }

  /** Adds `<attestor>:<key>:<value>`; the value may itself contain colons (labels, ARNs). */
  selector(key: string, value: string): this {
    if (!/^[a-z][a-z0-9_-]*$/.test(key)) throw new Error(`bad selector key ${key}`);
    this.#selectors.add(`${this.#attestor}:${key}:${value}`);
    return this;
  }

  /** Sets a namespaced attribute; keys that are not valid attribute keys are skipped, not trusted. */
  attribute(key: string, value: AttributeValue): this {
    if (isAttributeKey(key)) {
      this.#attributes[key] = Object.freeze({ value: Array.isArray(value) ? Object.freeze([...value]) : value, source: `attestor:${this.#attestor}`, observedAt: this.#observedAt });
    }
    return this;
  }

  build(agentId: string, expiresAt?: number): AttestationResult {
    const result: AttestationResult = {
      attestor: this.#attestor,
      agentId,
      selectors: Object.freeze([...this.#selectors].sort()),
      attributes: Object.freeze({ ...this.#attributes }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
    return Object.freeze(result);
  }
}

/** Requires `ctx.node` attested by one of `allowed`; otherwise ERR_ATTEST_NOT_BOUND. */
export function requireNode(ctx: AttestContext, attestor: AttestorName, allowed: readonly string[]): AttestedNode {
  const node = ctx.node;
  if (node === undefined) {
    throw new PlatformError('ERR_ATTEST_NOT_BOUND', `${attestor} evidence must come from an agent whose node is already attested`, { details: { attestor } });
  }
  if (!allowed.includes(node.attestor)) {
    throw new PlatformError('ERR_ATTEST_NOT_BOUND', `${attestor} evidence cannot be bound to a node attested by ${node.attestor}`, { details: { attestor, nodeAttestor: node.attestor, allowed } });
  }
  return node;
}

/** The string value of a node attribute, if present. */
export function nodeAttribute(node: AttestedNode, key: string): string | undefined {
  const value = node.attributes[key]?.value;
  return typeof value === 'string' ? value : undefined;
}

/**
 * Runs a platform call during attestation: platform and unexpected errors become
 * ERR_ATTEST_UPSTREAM (fail closed) while ERR_ATTEST_* errors pass through.
 */
export async function upstream<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof PlatformError && error.code.startsWith('ERR_ATTEST_')) throw error;
    const upstreamCode = error instanceof PlatformError ? error.code : 'ERR_INTERNAL';
    throw new PlatformError('ERR_ATTEST_UPSTREAM', `${what} failed (${upstreamCode})`, { cause: error, details: { upstreamCode } });
  }
}
