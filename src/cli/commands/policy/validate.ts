/** `ward policy validate -f <file|dir>`: every problem with file, document, field path and code. */
import type { Command } from 'commander';
import { formatIssue } from '../../../policy/index.js';
import type { CliContext } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { loadPolicyPaths } from './files.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerValidate(noun: Command, ctx: CliContext): void {
  noun
    .command('validate')
    .description('Check policy, workload and PolicyTest files (Ward, Kubernetes NetworkPolicy, Istio AuthorizationPolicy); list every problem')
    .requiredOption('-f, --file <path>', 'a file or directory (repeatable)', collect, [] as string[])
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action((opts: { file: string[]; output: OutputFormat }) => {
      try {
        const parsed = loadPolicyPaths(opts.file, ctx.clock.now());
        const valid = parsed.issues.length === 0;
        const result = {
          valid,
          policies: parsed.policies.length,
          workloads: parsed.workloads.length,
          tests: parsed.tests.length,
          issues: parsed.issues,
        };
        printResult(ctx, opts.output, result, () => {
          if (valid) return `valid: ${result.policies} policies, ${result.workloads} workloads, ${result.tests} tests`;
          return `${parsed.issues.map(formatIssue).join('\n')}\n${parsed.issues.length} problem(s); nothing is valid until all are fixed`;
        });
        ctx.exitCode = valid ? 0 : 1;
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
}
