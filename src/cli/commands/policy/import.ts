/** `ward policy import kubernetes|istio -f <file>`: converts to Ward policies with the same meaning. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { formatIssue, importIstioAuthorizationPolicy, importKubernetesNetworkPolicy, policiesToYaml, policyToDocument, PolicyValidationError } from '../../../policy/index.js';
import { PolicyError } from '../../../policy/errors.js';
import type { CliContext } from '../../context.js';
import { parseOutputFormat, reportError, type OutputFormat } from '../../output.js';
import { collectFiles } from './files.js';

export function registerImport(noun: Command, ctx: CliContext): void {
  noun
    .command('import')
    .description('Convert Kubernetes NetworkPolicy or Istio AuthorizationPolicy documents into Ward AccessPolicy documents (all or nothing)')
    .argument('<source>', 'kubernetes or istio')
    .requiredOption('-f, --file <path>', 'file or directory with the source documents')
    .option('--istio-root-namespace <ns>', 'Istio root namespace (policies there apply mesh-wide)', 'istio-system')
    .option('-o, --output <format>', 'yaml (default) or json', parseOutputFormat, 'yaml' as OutputFormat)
    .action((source: string, opts: { file: string; output: OutputFormat; istioRootNamespace: string }) => {
      try {
        if (source !== 'kubernetes' && source !== 'istio') {
          throw new PolicyError('ERR_POLICY_QUERY', `unknown import source ${JSON.stringify(source)}: use kubernetes or istio`);
        }
        const policies = [];
        const issues = [];
        for (const file of collectFiles(opts.file)) {
          const text = readFileSync(file, 'utf8');
          const res = source === 'kubernetes' ? importKubernetesNetworkPolicy(text, { file }) : importIstioAuthorizationPolicy(text, { file, rootNamespace: opts.istioRootNamespace });
          policies.push(...res.policies);
          issues.push(...res.issues);
        }
        if (issues.length > 0) {
          for (const i of issues) ctx.io.stderr(`${formatIssue(i)}\n`);
          throw new PolicyValidationError(issues);
        }
        if (opts.output === 'json') ctx.io.stdout(`${JSON.stringify(policies.map(policyToDocument), null, 2)}\n`);
        else ctx.io.stdout(policiesToYaml(policies));
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output === 'json' ? 'json' : 'text', error);
      }
    });
}
