/** Builds compiled sets from YAML for the policy tests. */
import assert from 'node:assert/strict';
import { compilePolicies, parsePolicyDocuments, formatIssue, type CompiledPolicySet, type NamedWorkload } from '../../../src/policy/index.js';

export const TD = 'spiffe://acme.com';
export const id = (ns: string, sa: string): string => `${TD}/ns/${ns}/sa/${sa}`;

export function workloadsYaml(list: ReadonlyArray<{ ns: string; sa: string; attrs?: Record<string, unknown>; ips?: string[] }>): string {
  return list
    .map((w) => JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'Workload', metadata: { name: `${w.ns}/${w.sa}` }, spec: { spiffeId: id(w.ns, w.sa), attributes: w.attrs ?? {}, ...(w.ips ? { ips: w.ips } : {}) } }))
    .join('\n---\n');
}

export function build(yaml: string): { set: CompiledPolicySet; workloads: NamedWorkload[] } {
  const parsed = parsePolicyDocuments(yaml, { file: 'test.yaml', now: 1 });
  assert.deepEqual(parsed.issues.map(formatIssue), []);
  return { set: compilePolicies({ policies: parsed.policies, workloads: parsed.workloads }), workloads: parsed.workloads };
}

export const access = (name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name }, spec });
