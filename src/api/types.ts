/**
 * Wire types of the Ward server API: what the admin REST API (`/v1/...`) and the agent API
 * (`/v1/agent/...`) send and receive as JSON. Shared by the server, the CLI and the agent; the
 * OpenAPI document served at `/openapi.json` describes the same shapes.
 */
import type { AttributeSet } from '../identity/attributes.js';

/** Every non-2xx answer. */
export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type Role = 'admin' | 'operator' | 'viewer' | 'auditor';

// ---- admin API --------------------------------------------------------------------------------

/** A registration entry: the SPIFFE ID a workload gets when all its selectors match (SPIRE model). */
export interface Entry {
  readonly id: string;
  readonly spiffeId: string;
  /** The agent SPIFFE ID allowed to mint it, or `*` for any agent whose node selectors match. */
  readonly parentId: string;
  /** Node selectors (`<attestor>:<key>:<value>`) the serving agent must have, all of them. */
  readonly nodeSelectors: readonly string[];
  /** Workload selectors the agent matches locally, all of them. */
  readonly selectors: readonly string[];
  readonly ttlSeconds: number;
  /** Increments on every update of the entry. */
  readonly revision: number;
}

export interface Workload {
  readonly spiffeId: string;
  readonly agentId: string;
  readonly imageDigest: string | null;
  /** Own attributes (attestors) merged with the image's scans and provenance, each with source and time. */
  readonly attributes: AttributeSet;
  readonly firstSeenAt: number;
  readonly lastSeenAt: number;
}

export interface AgentInfo {
  readonly agentId: string;
  readonly attestor: string;
  readonly selectors: readonly string[];
  readonly attributes: AttributeSet;
  readonly revoked: boolean;
  readonly firstSeenAt: number;
  readonly lastSeenAt: number;
}

/** A policy as stored: the document as applied, and the policy library's parsed form. */
export interface PolicyRecord {
  readonly kind: string;
  /** `name` or `namespace/name`. */
  readonly name: string;
  /** The document as applied (`apiVersion`, `kind`, `metadata`, `spec`). */
  readonly document: unknown;
  /** The parsed policy model (src/policy/model.ts) agents compile. */
  readonly policy: unknown;
  /** 1 on create, +1 on each update. */
  readonly version: number;
}

export interface AuditRecord {
  readonly id: number;
  /** ms since epoch */
  readonly at: number;
  /** `token:<id>(<role>)`, `cert:<spiffe id>`, `agent:<spiffe id>`, `anonymous` */
  readonly actor: string;
  readonly action: string;
  readonly resource: string;
  /** `denied`: the request was refused (its `code` says why) and nothing was stored. */
  readonly outcome: 'ok' | 'denied';
  readonly code?: string;
  readonly before: unknown;
  readonly after: unknown;
}

export interface ListResponse<T> {
  readonly items: readonly T[];
}

export interface ApplyRequest {
  /** Parsed YAML/JSON documents (`apiVersion`, `kind`, `metadata`, `spec`). */
  readonly documents: readonly unknown[];
  readonly dryRun?: boolean;
}

export interface ApplyResult {
  readonly kind: string;
  readonly name: string;
  readonly action: 'created' | 'configured' | 'unchanged';
}

export interface ApplyResponse {
  readonly dryRun: boolean;
  readonly results: readonly ApplyResult[];
}

export interface JoinTokenRequest {
  readonly ttlSeconds?: number;
  /** Attributes the admin vouches for (`host.name`, `vm.uuid`...); they become the node's attributes. */
  readonly attributes?: Readonly<Record<string, string>>;
}

export interface JoinTokenResponse {
  readonly token: string;
  readonly expiresAt: number;
}

export interface AdminTokenRequest {
  readonly role: Role;
  readonly name: string;
  readonly ttlSeconds?: number;
}

export interface AdminTokenResponse {
  readonly id: string;
  readonly token: string;
  readonly role: Role;
  readonly expiresAt: number;
}

export interface ScanImportResponse {
  readonly format: string;
  readonly imageDigests: readonly string[];
  readonly workloadsUpdated: readonly string[];
}

export interface ProvenanceImportResponse {
  readonly imageDigests: readonly string[];
  /** True when the signature verified with a configured key and the builder is trusted. */
  readonly verified: boolean;
  readonly workloadsUpdated: readonly string[];
}

// ---- agent API --------------------------------------------------------------------------------

export interface AttestRequest {
  readonly attestor: string;
  readonly evidence: unknown;
  /** PEM PKCS#10 for the agent's own SVID; its public key is certified, its subject is ignored. */
  readonly csr: string;
}

export interface SvidResponse {
  readonly spiffeId: string;
  /** PEM certificates, leaf first. */
  readonly certChain: readonly string[];
  readonly expiresAt: number;
}

export interface AttestResponse {
  readonly agentId: string;
  readonly svid: SvidResponse;
  /** PEM CA certificates of the trust domain. */
  readonly bundle: readonly string[];
}

export interface WorkloadSvidRequest {
  readonly spiffeId: string;
  readonly csr: string;
}

export interface AgentRenewRequest {
  readonly csr: string;
}

/** One SSE message of the watch stream; `id:` carries `resourceVersion`. */
export type WatchMessage =
  | { readonly type: 'bundle'; readonly resourceVersion: number; readonly bundle: readonly string[] }
  | { readonly type: 'entries'; readonly resourceVersion: number; readonly entries: readonly Entry[] }
  | { readonly type: 'policies'; readonly resourceVersion: number; readonly policies: readonly PolicyRecord[] }
  /**
   * Workload attributes: with `reset` the agent replaces its whole table; otherwise it upserts
   * `workloads` and drops `removed`.
   */
  | { readonly type: 'attributes'; readonly resourceVersion: number; readonly reset: boolean; readonly workloads: readonly { readonly spiffeId: string; readonly attributes: AttributeSet }[]; readonly removed: readonly string[] }
  | { readonly type: 'revocations'; readonly resourceVersion: number; readonly revocations: readonly { readonly serial: string; readonly spiffeId: string; readonly expiresAt: number }[] };

export type WatchMessageType = WatchMessage['type'];

export interface EventIngestResponse {
  readonly accepted: number;
  readonly duplicates: number;
  /** Highest sequence now stored for this agent: the agent may drop its spool up to here. */
  readonly ackedSequence: number;
}
