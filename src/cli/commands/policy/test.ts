/** `ward policy test <file|dir>...`: runs PolicyTest documents, like `opa test`. */
import type { Command } from 'commander';
import { formatIssue, runPolicyTests, type PolicyRefLoader } from '../../../policy/index.js';
import { PolicyError } from '../../../policy/errors.js';
import type { CliContext } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { loadPolicyPaths, resolveRef } from './files.js';

export function registerTest(noun: Command, ctx: CliContext): void {
  noun
    .command('test')
    .description('Run kind: PolicyTest documents; print each failing case with its explanation and a summary')
    .argument('<paths...>', 'test files or directories')
    .option('-v, --verbose', 'print passing cases too')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action((paths: string[], opts: { verbose?: boolean; output: OutputFormat }) => {
      try {
        const now = ctx.clock.now();
        const parsed = loadPolicyPaths(paths, now);
        if (parsed.tests.length === 0 && parsed.issues.length === 0) {
          throw new PolicyError('ERR_POLICY_TEST', `no PolicyTest documents under ${paths.join(', ')}`);
        }
        const cache = new Map<string, ReturnType<PolicyRefLoader>>();
        const loader: PolicyRefLoader = (ref, test) => {
          const path = resolveRef(ref, test.file);
          let loaded = cache.get(path);
          if (!loaded) {
            try {
              const docs = loadPolicyPaths([path], now);
              loaded = { policies: docs.policies, workloads: docs.workloads, issues: docs.issues };
            } catch (error) {
              const message = error instanceof Error ? error.message : String(error);
              loaded = { policies: [], workloads: [], issues: [{ code: 'ERR_POLICY_TEST', message, ...(test.file ? { file: test.file } : {}) }] };
            }
            cache.set(path, loaded);
          }
          return loaded;
        };
        const report = runPolicyTests(parsed.tests, loader);
        const failed = report.failed + parsed.issues.length;
        ctx.exitCode = failed > 0 ? 1 : 0;
        printResult(ctx, opts.output, { ...report, issues: parsed.issues }, () => {
          const lines: string[] = parsed.issues.map((i) => `ERROR ${formatIssue(i)}`);
          for (const e of report.errors) lines.push(`ERROR ${formatIssue(e)}`);
          for (const r of report.results) {
            if (r.passed) {
              if (opts.verbose) lines.push(`PASS ${r.test}: ${r.case}`);
              continue;
            }
            lines.push(`FAIL ${r.test}: ${r.case} (${r.location})`, `     ${r.message ?? ''}`);
            for (const l of r.explanation ?? []) lines.push(`     ${l}`);
          }
          const errors = parsed.issues.length + report.errors.length;
          lines.push(`${report.passed} passed, ${report.failed} failed${errors > 0 ? `, ${errors} error(s) in inputs` : ''}`);
          return lines.join('\n');
        });
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
}
