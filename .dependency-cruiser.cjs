/**
 * The dependency direction of docs/ARCHITECTURE.md, enforced in `npm test`.
 * A layer may import only the layers listed for it; pure layers import no I/O modules.
 */
const LAYERS = {
  core: [],
  pki: ['core'],
  identity: ['core'],
  policy: ['core', 'identity'],
  events: ['core', 'identity'],
  detect: ['core', 'identity', 'events', 'policy'],
  store: ['core', 'pki', 'identity', 'policy', 'events'],
  platforms: ['core', 'identity', 'pki'],
  api: ['core', 'identity', 'policy', 'events'],
  server: ['core', 'pki', 'identity', 'policy', 'events', 'detect', 'store', 'platforms', 'api'],
  agent: ['core', 'pki', 'identity', 'policy', 'events', 'detect', 'platforms', 'api'],
  cli: ['core', 'pki', 'identity', 'policy', 'events', 'detect', 'platforms', 'api'],
};
const ALL = Object.keys(LAYERS);

const layerRules = Object.entries(LAYERS).map(([layer, allowed]) => {
  const forbidden = ALL.filter((l) => l !== layer && !allowed.includes(l));
  return {
    name: `layer-${layer}`,
    comment: `src/${layer} may import only: ${allowed.join(', ') || 'nothing internal'}`,
    severity: 'error',
    from: layer === 'cli'
      ? { path: '^src/cli/', pathNot: '^src/cli/commands/(server|agent|demo)/' }
      : { path: `^src/${layer}/` },
    to: { path: `^src/(${forbidden.join('|')})/` },
  };
});

const IO_MODULES = '^(node:)?(fs|fs/promises|net|tls|http|https|http2|dgram|child_process|cluster|dns|worker_threads)$';

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'agent-server-apart',
      severity: 'error',
      from: { path: '^src/(agent|server)/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'pure-layers-do-no-io',
      comment: 'core, identity, policy, events, detect and pki (but its keystore adapters) do no I/O.',
      severity: 'error',
      from: { path: '^src/(core|identity|policy|events|detect|pki)/', pathNot: '^src/pki/keystore/' },
      to: { dependencyTypes: ['core'], path: IO_MODULES },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    { name: 'not-to-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'], exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
