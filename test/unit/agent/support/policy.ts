/**
 * The proxy tests' authorizer: real Ward policy documents (YAML, as in a static-mode policy
 * directory) parsed and cross-checked by the policy layer and compiled into the agent's
 * {@link PolicyAuthorizer} (ADR 0045). Decision references are the engine's
 * (`name/ingress[0]`, `default-deny`, `mtls-required`, …).
 */
import { assertNoIssues, parsePolicySources } from '../../../../src/policy/index.js';
import { PolicyAuthorizer, type PolicyAuthorizerOptions } from '../../../../src/agent/policy-authorizer.js';

/**
 * Compiles `yaml` (one or more `---`-separated documents). Throws the policy layer's
 * `PolicyValidationError` on any issue, so a typo in a test policy fails the test loudly.
 * `options.httpPorts` must name the listener's bound port for HTTP-field ALLOW rules to admit
 * connections (the inbound harness does this for HTTP ports).
 */
export function policyAuthorizer(yaml: string, version = 'v1', options: PolicyAuthorizerOptions = {}): PolicyAuthorizer {
  const parsed = parsePolicySources([{ file: 'test-policy.yaml', text: yaml }], { now: Date.now() });
  assertNoIssues(parsed.issues);
  return PolicyAuthorizer.compile({ policies: parsed.policies, workloads: parsed.workloads }, version, options);
}

/** A MutualTLSPolicy making every workload PERMISSIVE: plaintext peers arrive as `unauthenticated` (Ward's default is STRICT). */
export const PERMISSIVE_MTLS = `
apiVersion: ward.dev/v1alpha1
kind: MutualTLSPolicy
metadata: {name: permissive}
spec:
  mtls: {mode: PERMISSIVE}
`;

/**
 * One ALLOW AccessPolicy named `name` with one ingress rule admitting the given SPIFFE IDs, for
 * any operation or, with `to`, the operation given as a YAML flow mapping (`{paths: ["/a/*"]}`).
 */
export function allowFrom(name: string, spiffeIds: readonly string[], to?: string): string {
  return `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: ${name}}
spec:
  action: ALLOW
  ingress:
  - from: [{spiffeIds: ${JSON.stringify(spiffeIds)}}]
${to === undefined ? '' : `    to: [${to}]\n`}`;
}

/** Joins documents into one multi-document YAML string. */
export function docs(...documents: readonly string[]): string {
  return documents.join('\n---\n');
}
