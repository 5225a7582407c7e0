/**
 * Decisions: plain, JSON-serialisable results that travel in events and over the wire. They name
 * the deciding policy, rule index, action and mode, and what dry-run/learn policies would have
 * decided had they been enforced.
 */
import type { Direction, PolicyAction, PolicyMode } from './model.js';

export type DecisionReason =
  /** An enforced ALLOW rule matched (and no DENY). */
  | 'allowed'
  /** An enforced DENY rule matched. */
  | 'denied'
  /** The workload is protected in this direction and no ALLOW rule matched. */
  | 'default-deny'
  /** No ALLOW policy selects the workload in this direction: Ward does not restrict it. */
  | 'not-protected'
  /** A plaintext peer reached a port whose mTLS mode is STRICT. */
  | 'mtls-required'
  /** The request could not be normalised safely (path, method, header) and is refused. */
  | 'invalid-request';

/** A rule that matched: which policy, which rule (0-based, in its direction's list). */
export interface PolicyHit {
  readonly policy: string;
  readonly kind: string;
  readonly rule: number;
  readonly action: PolicyAction;
  readonly mode: PolicyMode;
}

/** The outcome on one side (ingress at the destination, egress at the source, or runtime). */
export interface Verdict {
  readonly allowed: boolean;
  readonly reason: DecisionReason;
  readonly direction?: Direction;
  /** The deciding policy and rule, when a rule decided. */
  readonly policy?: string;
  readonly rule?: number;
  readonly action?: PolicyAction;
  readonly mode?: PolicyMode;
  readonly detail?: string;
}

export interface Decision extends Verdict {
  /** AUDIT rules that matched (enforced ones; they never change the decision). */
  readonly audit: readonly PolicyHit[];
  /**
   * What would have been decided had every dry-run and learn policy been enforced too. Present
   * only when such a policy applies to this decision.
   */
  readonly dryRun?: Verdict;
  /** Per-side verdicts of a connection or request (egress at the source, ingress at the destination). */
  readonly egress?: Verdict;
  readonly ingress?: Verdict;
}

export const NO_HITS: readonly PolicyHit[] = Object.freeze([]);
