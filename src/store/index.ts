/** The store: repositories over Kysely for SQLite and PostgreSQL. See docs/reference/store.md. */
export { openStore, Store, Repositories, type StoreOptions, type ChangeListener, type SingletonRun } from './store.js';
export { parseStoreUrl, type StoreLocation } from './url.js';
export { STORE_ERRORS, StoreError, type StoreErrorCode } from './errors.js';
export type { ChangeKind } from './scope.js';
export type { CaState } from './repos/ca-state.js';
export type { RegistrationEntry, EntryInput } from './repos/entries.js';
export { IMAGE_DIGEST_RE, type AgentRecord, type SvidRecord, type WorkloadRecord } from './repos/agents.js';
export type { AttestationStateRepository, StoredCredential, CredentialRedeemOutcome, AttestationPruneResult } from './repos/attestation.js';
export type { ImageScan, ImageProvenance } from './repos/images.js';
export type { StoredPolicy } from './repos/policies.js';
export { newSecretToken, hashToken, ADMIN_ROLES, type AdminRole, type AdminTokenRecord, type JoinTokenRecord } from './repos/tokens.js';
export type { Revocation } from './repos/revocations.js';
export type { AuditRecord, AuditInput } from './repos/audit.js';
export type { StoredEvent, AppendResult } from './repos/events.js';
export type { Change, ChangesSince } from './repos/changes.js';
