/**
 * Row types of every table, as Kysely sees them. One schema for both dialects: JSON is stored
 * as text, booleans as 0/1 integers, times as epoch milliseconds (bigint, read back as numbers).
 */
import type { Generated } from 'kysely';

export interface CaStateTable {
  id: number;
  version: number;
  sealed: string;
  updated_at: number;
}

export interface EntriesTable {
  id: string;
  spiffe_id: string;
  parent_id: string;
  selectors: string;
  /** Sorted selectors joined by newline: makes "same entry" a unique key. */
  selectors_key: string;
  ttl_seconds: number;
  admin: number;
  downstream: number;
  revision: number;
  created_at: number;
  updated_at: number;
}

export interface AgentsTable {
  agent_id: string;
  spiffe_id: string;
  attestation_type: string;
  selectors: string;
  first_seen: number;
  last_seen: number;
  revoked: number;
}

export interface SvidsTable {
  serial: string;
  agent_id: string;
  spiffe_id: string;
  issued_at: number;
  expires_at: number;
}

export interface WorkloadsTable {
  spiffe_id: string;
  agent_id: string;
  image_digest: string | null;
  first_seen: number;
  last_seen: number;
}

export interface AttributesTable {
  spiffe_id: string;
  source: string;
  key: string;
  value: string;
  observed_at: number;
}

export interface ImageScansTable {
  image_digest: string;
  scanner: string;
  attributes: string;
  summary: string;
  imported_at: number;
}

export interface ProvenanceTable {
  image_digest: string;
  attributes: string;
  statement: string;
  verified: number;
  imported_at: number;
}

export interface PoliciesTable {
  name: string;
  yaml: string;
  parsed: string;
  version: number;
  updated_at: number;
}

export interface JoinTokensTable {
  token_hash: string;
  spiffe_id: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
}

/** One-time attestation credentials (join tokens): keyed by (kind, SHA-256 of the secret). */
export interface AttestationCredentialsTable {
  kind: string;
  key_hash: string;
  data: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** One-time evidence already seen (EC2 instance ids, x509pop nonces), until it expires. */
export interface AttestationConsumedTable {
  kind: string;
  key: string;
  consumed_at: number;
  expires_at: number;
}

export interface AdminTokensTable {
  token_hash: string;
  name: string;
  role: string;
  created_at: number;
  expires_at: number | null;
  revoked: number;
}

export interface RevocationsTable {
  serial: string;
  spiffe_id: string;
  reason: string;
  revoked_at: number;
  expires_at: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  action: string;
  resource: string;
  before: string | null;
  after: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  agent_id: string;
  seq: number;
  class_uid: number;
  spiffe_id: string;
  time: number;
  severity_id: number;
  event: string;
  received_at: number;
}

export interface ChangeLogTable {
  version: Generated<number>;
  kind: string;
  resource_id: string;
  op: string;
  at: number;
}

export interface StoreMetaTable {
  key: string;
  value: string;
}

export interface Database {
  store_meta: StoreMetaTable;
  ca_state: CaStateTable;
  entries: EntriesTable;
  agents: AgentsTable;
  svids: SvidsTable;
  workloads: WorkloadsTable;
  attributes: AttributesTable;
  image_scans: ImageScansTable;
  provenance: ProvenanceTable;
  policies: PoliciesTable;
  join_tokens: JoinTokensTable;
  attestation_credentials: AttestationCredentialsTable;
  attestation_consumed: AttestationConsumedTable;
  admin_tokens: AdminTokensTable;
  revocations: RevocationsTable;
  audit_log: AuditLogTable;
  events: EventsTable;
  change_log: ChangeLogTable;
}
