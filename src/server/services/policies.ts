/**
 * Binds the policy library to {@link PolicyPort}: one document at a time, parsed and validated
 * exactly as `ward policy validate` does (the document travels as JSON, which is YAML), so the
 * server and the CLI accept and refuse the same documents with the same codes.
 */
import { parsePolicyDocuments, assertNoIssues } from '../../policy/parse.js';
import { policyRef } from '../../policy/model.js';
import { PolicyError } from '../../policy/errors.js';
import type { PolicyPort, ValidatedPolicy } from '../ports.js';

export function createPolicyPort(now: () => number): PolicyPort {
  return {
    validate(document: unknown): ValidatedPolicy {
      const parsed = parsePolicyDocuments(JSON.stringify(document), { now: now() });
      assertNoIssues(parsed.issues);
      if (parsed.policies.length !== 1 || parsed.workloads.length > 0 || parsed.tests.length > 0) {
        throw new PolicyError('ERR_POLICY_KIND', 'only policy documents (and RegistrationEntry) can be applied to the server');
      }
      const policy = parsed.policies[0]!;
      return { kind: policy.kind, name: policyRef(policy), document, policy };
    },
  };
}
