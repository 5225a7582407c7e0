/**
 * Shared, immutable results for the hot path (ADR 0024). A decision is built from a handful of
 * values that depend only on which rule matched: the hit (policy, rule, action, mode), the
 * per-side verdict, the side's (effective, audit, dry-run) triple, and the combined decision. They
 * are created once per policy set and shared, so a first decision for a new pair allocates only
 * its cache entry. Everything shared is frozen, so sharing cannot be observed.
 */
import type { Decision, PolicyHit, Verdict } from './decision.js';
import { NO_HITS } from './decision.js';
import type { Direction, PolicyAction, PolicyMode } from './model.js';

/** A frozen verdict (`direction`, hit fields and `detail` only when given, as before). */
export function makeVerdict(allowed: boolean, reason: Verdict['reason'], direction: Direction | undefined, hit?: PolicyHit, detail?: string): Verdict {
  const v: { -readonly [K in keyof Verdict]: Verdict[K] } = { allowed, reason };
  if (direction) v.direction = direction;
  if (hit) {
    v.policy = hit.policy;
    v.rule = hit.rule;
    v.action = hit.action as 'ALLOW' | 'DENY';
    v.mode = hit.mode;
  }
  if (detail) v.detail = detail;
  return Object.freeze(v);
}

export function makeHit(policy: string, kind: string, rule: number, action: PolicyAction, mode: PolicyMode): PolicyHit {
  return Object.freeze({ policy, kind, rule, action, mode });
}

/**
 * What one rule of one policy contributes when it matches: its hit, the verdict it gives on each
 * side (ALLOW/DENY policies), and a one-element audit list (AUDIT policies). Built at compile time.
 */
export interface RuleOutcome {
  readonly hit: PolicyHit;
  /** Verdict when this rule decides the ingress side, the egress side, or a runtime decision. */
  readonly ingress: Verdict;
  readonly egress: Verdict;
  readonly runtime: Verdict;
  /** `[hit]`, frozen: the audit list when this is the only AUDIT rule that matched. */
  readonly auditOnly: readonly PolicyHit[];
}

export function ruleOutcome(policy: string, kind: string, rule: number, action: PolicyAction, mode: PolicyMode): RuleOutcome {
  const hit = makeHit(policy, kind, rule, action, mode);
  const allowed = action !== 'DENY';
  const reason = action === 'DENY' ? 'denied' : 'allowed';
  return Object.freeze({
    hit,
    ingress: makeVerdict(allowed, reason, 'ingress', hit),
    egress: makeVerdict(allowed, reason, 'egress', hit),
    runtime: makeVerdict(allowed, reason, undefined, hit),
    auditOnly: Object.freeze([hit]),
  });
}

/** One side's outcome (ingress at the destination, egress at the source, or runtime). */
export interface SideResult {
  readonly effective: Verdict;
  readonly audit: readonly PolicyHit[];
  readonly dryRun: Verdict | undefined;
}

/** Marks interned side results: only these may key the decision table. */
class SharedSide implements SideResult {
  constructor(
    readonly effective: Verdict,
    readonly audit: readonly PolicyHit[],
    readonly dryRun: Verdict | undefined,
  ) {
    Object.freeze(this);
  }
}

const NONE = Object.freeze({});

/**
 * Interning tables of one policy set. Keys are the shared objects above, so the tables hold at
 * most (verdicts x dry-run verdicts x audit lists) sides and (sides x sides) decisions actually
 * seen; a hard cap keeps even a pathological set bounded (past it, results are simply allocated).
 */
export class ResultInterner {
  static readonly MAX_ENTRIES = 100_000;
  #entries = 0;
  readonly #sides = new Map<Verdict, Map<object, Map<readonly PolicyHit[], SideResult>>>();
  readonly #decisions = new Map<object, Map<object, Decision>>();
  readonly #mtls = new Map<number, Verdict>();

  /** The side result for this triple; shared when `audit` is empty or a rule's `auditOnly` list. */
  side(effective: Verdict, audit: readonly PolicyHit[], dryRun: Verdict | undefined, shareableAudit: boolean): SideResult {
    if (!shareableAudit) return { effective, audit, dryRun };
    let byDry = this.#sides.get(effective);
    if (byDry === undefined) {
      if (this.#entries >= ResultInterner.MAX_ENTRIES) return { effective, audit, dryRun };
      this.#sides.set(effective, (byDry = new Map()));
    }
    const dk = dryRun ?? NONE;
    let byAudit = byDry.get(dk);
    if (byAudit === undefined) {
      if (this.#entries >= ResultInterner.MAX_ENTRIES) return { effective, audit, dryRun };
      byDry.set(dk, (byAudit = new Map()));
    }
    let s = byAudit.get(audit);
    if (s === undefined) {
      if (this.#entries >= ResultInterner.MAX_ENTRIES) return { effective, audit, dryRun };
      s = new SharedSide(effective, audit, dryRun);
      byAudit.set(audit, s);
      this.#entries++;
    }
    return s;
  }

  /** The decision combining two sides, shared when both sides are interned. */
  decision(egress: SideResult | undefined, ingress: SideResult | undefined, build: (e: SideResult | undefined, i: SideResult | undefined) => Decision): Decision {
    if ((egress !== undefined && !(egress instanceof SharedSide)) || (ingress !== undefined && !(ingress instanceof SharedSide))) return build(egress, ingress);
    const ek = egress ?? NONE;
    let byIngress = this.#decisions.get(ek);
    if (byIngress === undefined) {
      if (this.#entries >= ResultInterner.MAX_ENTRIES) return build(egress, ingress);
      this.#decisions.set(ek, (byIngress = new Map()));
    }
    const ik = ingress ?? NONE;
    let d = byIngress.get(ik);
    if (d === undefined) {
      if (this.#entries >= ResultInterner.MAX_ENTRIES) return build(egress, ingress);
      d = build(egress, ingress);
      byIngress.set(ik, d);
      this.#entries++;
    }
    return d;
  }

  /** The `mtls-required` verdict for a port (one per port). */
  mtlsRequired(port: number): Verdict {
    let v = this.#mtls.get(port);
    if (v === undefined) this.#mtls.set(port, (v = makeVerdict(false, 'mtls-required', 'ingress', undefined, `port ${port} requires mutual TLS`)));
    return v;
  }
}

export { NO_HITS };
