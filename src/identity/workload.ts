/**
 * Workload identity documents as policies see them: the SPIFFE ID plus attributes, with the facts
 * implied by a Kubernetes-style SPIFFE path (`ns/<ns>/sa/<sa>`) filled in when no attestor gave them.
 */
import type { Attribute, AttributeSet, AttributeValue, WorkloadIdentity } from './attributes.js';
import { isAttributeKey } from './attributes.js';
import { IdentityError } from './errors.js';
import { tryParseSpiffeId } from '../core/spiffe-id.js';

/** True for a valid SPIFFE ID (checked by the core parser, exactly as the SPIFFE spec says). */
export function isSpiffeIdText(text: string): boolean {
  return tryParseSpiffeId(text) !== undefined;
}

/** The trust domain and path of a SPIFFE ID, or undefined when it is not one. */
export function splitSpiffeId(text: string): { trustDomain: string; path: string } | undefined {
  const id = tryParseSpiffeId(text);
  return id === undefined ? undefined : { trustDomain: id.trustDomain, path: id.path };
}

/**
 * The attribute view of a workload: its attribute values plus `spiffe.id`, `spiffe.trustDomain`
 * and, when the path is `/ns/<ns>/sa/<sa>[/...]` and no source set them, `k8s.namespace`,
 * `k8s.serviceAccount` and `k8s.namespace.label.kubernetes.io/metadata.name` (the label Kubernetes
 * puts on every namespace).
 *
 * @example
 * workloadAttributeView({ spiffeId: 'spiffe://td/ns/a/sa/b', attributes: {} })['k8s.namespace']; // 'a'
 */
export function workloadAttributeView(identity: WorkloadIdentity): Record<string, AttributeValue> {
  // A plain object (not a null-prototype one) keeps V8's fast properties for the selector hot path.
  // Safe because only namespaced keys (`a.b`, never `__proto__` or a prototype member) are copied
  // and selectors can only name namespaced keys.
  const out: Record<string, AttributeValue> = {};
  for (const [key, attr] of Object.entries(identity.attributes)) if (isAttributeKey(key)) out[key] = attr.value;
  const id = splitSpiffeId(identity.spiffeId);
  if (id) {
    out['spiffe.id'] = identity.spiffeId;
    out['spiffe.trustDomain'] = id.trustDomain;
    const m = /^\/ns\/([^/]+)\/sa\/([^/]+)/.exec(id.path);
    if (m) {
      if (out['k8s.namespace'] === undefined) out['k8s.namespace'] = m[1]!;
      if (out['k8s.serviceAccount'] === undefined) out['k8s.serviceAccount'] = m[2]!;
    }
  }
  const ns = out['k8s.namespace'];
  if (typeof ns === 'string' && out['k8s.namespace.label.kubernetes.io/metadata.name'] === undefined) {
    out['k8s.namespace.label.kubernetes.io/metadata.name'] = ns;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(path: string, message: string): never {
  throw new IdentityError('ERR_WORKLOAD_INVALID', `${path}: ${message}`, { details: { path } });
}

function parseValue(value: unknown, path: string): AttributeValue {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return Object.freeze([...value]) as readonly string[];
  return fail(path, 'attribute value must be a string, finite number, boolean or list of strings');
}

/**
 * Parses a workload identity from plain data: `{spiffeId, attributes: {key: value | {value, source, observedAt}}}`.
 * Bare values get source `file` and `observedAt` = `now`.
 */
export function parseWorkloadIdentity(raw: unknown, now: number, path = 'workload'): WorkloadIdentity {
  if (!isRecord(raw)) fail(path, 'expected a mapping with spiffeId and attributes');
  const spiffeId = raw['spiffeId'];
  if (typeof spiffeId !== 'string' || !isSpiffeIdText(spiffeId)) fail(`${path}.spiffeId`, 'expected a SPIFFE ID spiffe://<trust-domain>/<path>');
  const attrsRaw = raw['attributes'] ?? {};
  if (!isRecord(attrsRaw)) fail(`${path}.attributes`, 'expected a mapping');
  const attributes: Record<string, Attribute> = {};
  for (const [key, v] of Object.entries(attrsRaw)) {
    const p = `${path}.attributes.${key}`;
    if (!isAttributeKey(key)) fail(p, 'invalid attribute key (expected a namespaced key such as k8s.namespace)');
    if (isRecord(v)) {
      const observedAt = v['observedAt'] ?? now;
      if (typeof observedAt !== 'number' || !Number.isFinite(observedAt)) fail(`${p}.observedAt`, 'expected milliseconds since the epoch');
      const source = v['source'] ?? 'file';
      if (typeof source !== 'string') fail(`${p}.source`, 'expected a string');
      attributes[key] = Object.freeze({ value: parseValue(v['value'], `${p}.value`), source, observedAt });
    } else {
      attributes[key] = Object.freeze({ value: parseValue(v, p), source: 'file', observedAt: now });
    }
  }
  return Object.freeze({ spiffeId, attributes: Object.freeze(attributes) as AttributeSet });
}
