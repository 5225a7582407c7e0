export { importIstioAuthorizationPolicy, importKubernetesNetworkPolicy } from '../../../src/policy/index.js';
export { formatSelector as formatSelectorOf } from '../../../src/identity/selector.js';
