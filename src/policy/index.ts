/**
 * The policy layer: one least-privilege language for network, API and runtime.
 *
 * parse -> validate -> compile -> evaluate / explain; import from Kubernetes and Istio; PolicyTest
 * runner. Pure: no I/O, no environment.
 */
export * from './errors.js';
export * from './model.js';
export * from './decision.js';
export { normalizePath, type NormalizedPath, type NormalizeOptions } from './path.js';
export { loadYamlDocuments, type YamlLimits } from './yaml.js';
export {
  parsePolicyDocuments,
  parsePolicySources,
  validatePolicies,
  crossChecks,
  assertNoIssues,
  type NamedWorkload,
  type ParsedDocuments,
  type ParseOptions,
  type PolicySource,
  type PolicyTestCase,
  type PolicyTestDocument,
} from './parse.js';
export { compilePolicies, CompiledPolicySet, type PolicySetInput, type AppliedPolicies } from './compile.js';
export {
  evaluateConnection,
  evaluateRequest,
  evaluateProcess,
  evaluateFile,
  type ConnectionQuery,
  type RequestQuery,
  type ProcessQuery,
  type FileQuery,
  type SourceRef,
  type DestinationRef,
  type PolicyTrace,
  type RuleTrace,
} from './evaluate.js';
export { explain, parseSourceRef, parseDestinationRef, type ExplainQuery, type Explanation } from './explain.js';
export { runPolicyTests, type PolicyTestReport, type CaseResult, type PolicyRefLoader } from './testing.js';
export { importKubernetesNetworkPolicy } from './import/kubernetes.js';
export { importIstioAuthorizationPolicy } from './import/istio.js';
export { policyToDocument, policiesToYaml } from './serialize.js';
export { proposePolicies, generalisePath, type Observation, type ProposeOptions } from './learn/propose.js';
