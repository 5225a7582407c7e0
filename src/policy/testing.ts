/**
 * The PolicyTest runner (`ward policy test`, like `opa test`): compiles each test's policies and
 * workloads, runs every case, and reports failures with their explanation.
 */
import { PolicyError, formatIssue, type PolicyIssue } from './errors.js';
import { compilePolicies, type CompiledPolicySet } from './compile.js';
import { explain, parseDestinationRef, parseSourceRef, type ExplainQuery } from './explain.js';
import type { Decision } from './decision.js';
import type { Policy } from './model.js';
import type { NamedWorkload, PolicyTestCase, PolicyTestDocument } from './parse.js';
import { crossChecks } from './parse.js';
import type { DestinationRef, SourceRef } from './evaluate.js';

export interface CaseResult {
  readonly test: string;
  readonly case: string;
  readonly passed: boolean;
  readonly expected: 'allow' | 'deny';
  readonly actual: 'allow' | 'deny';
  readonly decision: Decision;
  /** Why it failed (wrong verdict or wrong deciding policy) and the explanation, on failure. */
  readonly message?: string;
  readonly explanation?: readonly string[];
  readonly location: string;
}

export interface PolicyTestReport {
  readonly passed: number;
  readonly failed: number;
  readonly results: readonly CaseResult[];
  /** Problems that stopped a whole test from running (bad references, duplicates). */
  readonly errors: readonly PolicyIssue[];
}

/** Supplies the documents a test references by file name (the CLI reads files; tests pass maps). */
export type PolicyRefLoader = (ref: string, test: PolicyTestDocument) => { policies: readonly Policy[]; workloads: readonly NamedWorkload[]; issues: readonly PolicyIssue[] };

function resolveName(name: string, byName: ReadonlyMap<string, NamedWorkload>): string {
  return byName.get(name)?.spiffeId ?? name;
}

function queryOf(c: PolicyTestCase, byName: ReadonlyMap<string, NamedWorkload>): ExplainQuery {
  const to = parseDestinationRef(resolveName(c.to, byName));
  if (c.process || c.file) {
    return { destination: to, ...(c.process ? { process: c.process } : {}), ...(c.file ? { file: c.file } : {}) };
  }
  const source: SourceRef = parseSourceRef(resolveName(c.from, byName));
  return {
    source,
    destination: to as DestinationRef,
    port: c.port!,
    ...(c.protocol ? { protocol: c.protocol } : {}),
    ...(c.http ? { http: c.http } : {}),
  };
}

function runCase(set: CompiledPolicySet, test: PolicyTestDocument, c: PolicyTestCase, byName: ReadonlyMap<string, NamedWorkload>): CaseResult {
  const location = `${test.file ?? '<input>'}#${test.document ?? 0} ${c.path}`;
  let e;
  try {
    e = explain(set, queryOf(c, byName));
  } catch (error) {
    const message = error instanceof PolicyError ? `${error.code}: ${error.message}` : String(error);
    const decision = Object.freeze({ allowed: false, reason: 'invalid-request' as const, detail: message, audit: [] });
    return { test: test.name, case: c.name, passed: false, expected: c.expect, actual: 'deny', decision, message, location };
  }
  const actual = e.decision.allowed ? 'allow' : 'deny';
  let message: string | undefined;
  if (actual !== c.expect) message = `expected ${c.expect}, got ${actual}`;
  else if (c.expectPolicy !== undefined && e.decision.policy !== c.expectPolicy) {
    message = `expected the decision to come from ${c.expectPolicy}, got ${e.decision.policy ?? `(${e.decision.reason})`}`;
  }
  return {
    test: test.name, case: c.name, passed: message === undefined, expected: c.expect, actual, decision: e.decision, location,
    ...(message ? { message, explanation: e.summary } : {}),
  };
}

/**
 * Runs PolicyTest documents. Each test compiles its own policies (referenced and inline) and
 * workloads; a test whose inputs do not validate counts all its cases as failed.
 *
 * @example
 * const report = runPolicyTests(parsed.tests, loader);
 * console.log(`${report.passed} passed, ${report.failed} failed`);
 */
export function runPolicyTests(tests: readonly PolicyTestDocument[], load?: PolicyRefLoader): PolicyTestReport {
  const results: CaseResult[] = [];
  const errors: PolicyIssue[] = [];
  let failed = 0;
  for (const test of tests) {
    const policies: Policy[] = [...test.inlinePolicies];
    const workloads: NamedWorkload[] = [...test.workloads];
    const issues: PolicyIssue[] = [];
    for (const ref of [...test.policyRefs, ...test.workloadRefs]) {
      if (!load) {
        issues.push({ code: 'ERR_POLICY_TEST', message: `cannot resolve ${ref}: no loader`, ...(test.file ? { file: test.file } : {}) });
        continue;
      }
      const loaded = load(ref, test);
      policies.push(...loaded.policies);
      workloads.push(...loaded.workloads);
      issues.push(...loaded.issues);
    }
    issues.push(...crossChecks(policies, workloads));
    if (issues.length > 0) {
      errors.push(...issues);
      failed += test.cases.length;
      for (const c of test.cases) {
        const decision = Object.freeze({ allowed: false, reason: 'invalid-request' as const, audit: [] });
        results.push({ test: test.name, case: c.name, passed: false, expected: c.expect, actual: 'deny', decision, message: `test inputs invalid: ${formatIssue(issues[0]!)}`, location: c.path });
      }
      continue;
    }
    const set = compilePolicies({ policies, workloads });
    const byName = new Map(workloads.filter((w) => w.name !== undefined).map((w) => [w.name!, w]));
    for (const c of test.cases) {
      const r = runCase(set, test, c, byName);
      if (!r.passed) failed++;
      results.push(r);
    }
  }
  return { passed: results.length - failed, failed, results, errors };
}
