/**
 * Workload identity attributes: the facts about a workload that policies select on.
 *
 * Keys are namespaced by where they come from (`k8s.namespace`, `k8s.label.<k>`, `image.digest`,
 * `ecs.family`, `aws.account`, `vm.tag.<k>`, `host.name`, `build.repo`, `build.commit`,
 * `build.builder`, `build.verified`, `vuln.critical`, `vuln.high`, `vuln.medium`, `vuln.maxCvss`,
 * `vuln.fixable`, `vuln.cves`, ...). Every attribute carries its source and the time it was
 * observed, so `ward get workload <id>` can show where each fact came from.
 *
 * This file is the shared contract between attestors, scanners, provenance, the store and the
 * policy engine: change it only with all of them in mind.
 */

/** Values are scalars or string lists (labels are strings; counts are numbers; flags are booleans). */
export type AttributeValue = string | number | boolean | readonly string[];

export interface Attribute {
  readonly value: AttributeValue;
  /** Who asserted it: `attestor:k8s_psat`, `scan:trivy`, `provenance:slsa`, `entry`, ... */
  readonly source: string;
  /** Milliseconds since the epoch when the source observed it. */
  readonly observedAt: number;
}

/** Attribute key -> attribute. */
export type AttributeSet = Readonly<Record<string, Attribute>>;

/** A workload's full identity document: its SPIFFE ID plus attributes. */
export interface WorkloadIdentity {
  readonly spiffeId: string;
  readonly attributes: AttributeSet;
}

/** Max length of an attribute key: `k8s.label.` + a 317-char qualified Kubernetes label key. */
export const MAX_ATTRIBUTE_KEY_LENGTH = 340;

const KEY_RE = /^[a-z][a-z0-9]*(\.[A-Za-z0-9][A-Za-z0-9_./-]*)+$/;

/** True when `key` is a namespaced attribute key such as `k8s.label.app.kubernetes.io/name`. */
export function isAttributeKey(key: string): boolean {
  return key.length <= MAX_ATTRIBUTE_KEY_LENGTH && KEY_RE.test(key);
}

/** Plain key -> value view of an attribute set (what selectors evaluate against). */
export function attributeValues(set: AttributeSet): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [key, attr] of Object.entries(set)) out[key] = attr.value;
  return out;
}

/**
 * Merges attribute sets; for the same key the later observation wins, so a fresh scan replaces an
 * older one while attestation facts from another source stay.
 */
export function mergeAttributes(...sets: readonly AttributeSet[]): AttributeSet {
  const out: Record<string, Attribute> = {};
  for (const set of sets) {
    for (const [key, attr] of Object.entries(set)) {
      const prev = out[key];
      if (prev === undefined || attr.observedAt >= prev.observedAt) out[key] = attr;
    }
  }
  return Object.freeze(out);
}
