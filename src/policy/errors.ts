/**
 * Error codes of the policy layer. Validation problems are collected as {@link PolicyIssue}s
 * (file, document index, field path, code) so `ward policy validate` can list them all at once.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const POLICY_ERRORS = defineErrorCodes('policy', {
  ERR_POLICY_YAML: 'A policy file is not valid YAML, or breaks a parser limit (size, document count, alias expansion, nesting).',
  ERR_POLICY_SCHEMA: 'A policy document has a missing, unknown or wrongly typed field; `details.path` names it.',
  ERR_POLICY_KIND: 'A document has an unsupported `apiVersion`/`kind` pair.',
  ERR_POLICY_DUPLICATE: 'Two policy documents have the same kind, namespace and name.',
  ERR_POLICY_SELECTOR: 'A subject or peer selector is invalid (see ERR_SELECTOR_INVALID for the cause).',
  ERR_POLICY_VALUE: 'A value is out of range or malformed: port, CIDR, SPIFFE ID pattern, path template, glob, sha256, method.',
  ERR_POLICY_IMPORT_UNSUPPORTED: 'A Kubernetes or Istio field has no faithful Ward equivalent (named ports, CUSTOM action, targetRefs, unknown `when` key); nothing is imported.',
  ERR_POLICY_WORKLOAD: 'A workloads file entry is invalid or a SPIFFE ID appears twice.',
  ERR_POLICY_QUERY: 'An evaluation or explain query is malformed (bad peer, port, method or header).',
  ERR_POLICY_TEST: 'A PolicyTest document is malformed (missing cases, bad expectation, unknown workload).',
});

export type PolicyErrorCode = CodeOf<typeof POLICY_ERRORS>;

export class PolicyError extends WardError<PolicyErrorCode> {
  override readonly name = 'PolicyError';
}

/** One validation problem, located precisely. */
export interface PolicyIssue {
  readonly code: PolicyErrorCode;
  readonly message: string;
  /** The source name given to the parser (file path), if any. */
  readonly file?: string;
  /** 0-based index of the document in its file. */
  readonly document?: number;
  /** Field path inside the document, e.g. `spec.ingress[0].from[1].ipBlocks[0].cidr`. */
  readonly path?: string;
}

/** Thrown by the all-or-nothing entry points when validation found problems; carries all of them. */
export class PolicyValidationError extends PolicyError {
  readonly issues: readonly PolicyIssue[];
  constructor(issues: readonly PolicyIssue[]) {
    const first = issues[0];
    super(first?.code ?? 'ERR_POLICY_SCHEMA', `${issues.length} problem(s); first: ${first ? formatIssue(first) : 'none'}`, {
      details: { issues: issues.length },
    });
    this.issues = issues;
  }
}

/** `file#doc path: CODE message` */
export function formatIssue(issue: PolicyIssue): string {
  const where = [issue.file ?? '<input>', issue.document === undefined ? '' : `#${issue.document}`].join('');
  return `${where}${issue.path ? ` ${issue.path}` : ''}: ${issue.code}: ${issue.message}`;
}
