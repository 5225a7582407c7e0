/**
 * What the watch stream has told this agent, applied in order: trust bundle, registration
 * entries, policies (re-validated here with the policy library: a bad set is refused and the
 * last good one stays in force), the peer attribute table and revocations. Pure bookkeeping:
 * no I/O; the controller hands the results to the TLS state and the authorizer holder.
 */
import type { Entry, PolicyRecord, WatchMessage } from '../../api/types.js';
import type { AttributeSet } from '../../identity/attributes.js';
import { parsePolicyDocuments } from '../../policy/parse.js';
import type { Policy } from '../../policy/model.js';
import { PolicyAuthorizer, type PolicyAuthorizerOptions } from '../policy-authorizer.js';
import { ControlError } from './errors.js';

/** Whole-state kinds the first connection must have seen before the agent serves. */
const INITIAL_KINDS = ['bundle', 'entries', 'policies', 'attributes'] as const;

export interface StateChange {
  readonly bundle?: readonly string[];
  readonly entries?: readonly Entry[];
  /** A new authorizer to install (policies or attributes changed). */
  readonly authorizer?: PolicyAuthorizer;
  readonly revoked?: readonly string[];
}

/** Parses and validates the policies of a `policies` message; throws ERR_CONTROL_STREAM on any issue. */
export function policiesFromRecords(records: readonly PolicyRecord[]): Policy[] {
  const out: Policy[] = [];
  for (const r of records) {
    const parsed = parsePolicyDocuments(JSON.stringify(r.document), { file: `server:${r.name}` });
    if (parsed.issues.length > 0) {
      const first = parsed.issues[0] as { code?: string; message?: string };
      throw new ControlError('ERR_CONTROL_STREAM', `policy ${r.name} from the server does not validate: ${first.code ?? ''} ${first.message ?? ''}`.trim(), { details: { policy: r.name } });
    }
    out.push(...parsed.policies);
  }
  return out;
}

export class ControlState {
  readonly #options: () => PolicyAuthorizerOptions;
  readonly #seen = new Set<string>();
  /** Highest resource version applied: where a reconnect resumes. */
  resourceVersion: number | undefined;
  bundle: readonly string[] = [];
  entries: readonly Entry[] = [];
  policies: readonly Policy[] | undefined;
  readonly workloads = new Map<string, AttributeSet>();
  authorizer: PolicyAuthorizer | undefined;
  revoked: readonly string[] = [];
  /** Watch messages refused (the previous state stayed in force). */
  refused = 0;

  constructor(options: () => PolicyAuthorizerOptions) {
    this.#options = options;
  }

  /** Every kind the agent needs has arrived at least once. */
  get synced(): boolean {
    return INITIAL_KINDS.every((k) => this.#seen.has(k));
  }

  /** Applies one message; returns what changed. Throws ERR_CONTROL_STREAM (state unchanged) on bad content. */
  apply(msg: WatchMessage): StateChange {
    let change: StateChange = {};
    switch (msg.type) {
      case 'bundle':
        if (!Array.isArray(msg.bundle) || msg.bundle.length === 0 || !msg.bundle.every((p) => typeof p === 'string' && p.includes('BEGIN CERTIFICATE'))) {
          throw new ControlError('ERR_CONTROL_STREAM', 'the trust bundle from the server holds no certificate');
        }
        this.bundle = msg.bundle;
        change = { bundle: msg.bundle };
        break;
      case 'entries':
        this.entries = msg.entries;
        change = { entries: msg.entries };
        break;
      case 'policies': {
        const policies = policiesFromRecords(msg.policies);
        const authorizer = this.#compile(policies, `rv${msg.resourceVersion}`);
        this.policies = policies;
        this.authorizer = authorizer;
        change = { authorizer };
        break;
      }
      case 'attributes': {
        if (msg.reset) this.workloads.clear();
        for (const w of msg.workloads) this.workloads.set(w.spiffeId, w.attributes);
        for (const id of msg.removed) this.workloads.delete(id);
        if (this.authorizer !== undefined) {
          try {
            this.authorizer = this.authorizer.withWorkloads({ reset: msg.reset, upsert: msg.workloads, removed: msg.removed });
          } catch {
            // An attribute set the table refuses: rebuild from the whole table instead.
            this.authorizer = this.#compile(this.policies ?? [], `rv${msg.resourceVersion}`);
          }
          change = { authorizer: this.authorizer };
        }
        break;
      }
      case 'revocations':
        this.revoked = msg.revocations.map((r) => r.serial);
        change = { revoked: this.revoked };
        break;
      default:
        return {};
    }
    this.#seen.add(msg.type);
    if (this.resourceVersion === undefined || msg.resourceVersion > this.resourceVersion) this.resourceVersion = msg.resourceVersion;
    return change;
  }

  #compile(policies: readonly Policy[], version: string): PolicyAuthorizer {
    try {
      return PolicyAuthorizer.compile({ policies, workloads: [...this.workloads].map(([spiffeId, attributes]) => ({ spiffeId, attributes })) }, version, this.#options());
    } catch (cause) {
      throw new ControlError('ERR_CONTROL_STREAM', 'the policies from the server do not compile', { cause });
    }
  }
}
