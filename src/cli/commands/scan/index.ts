/**
 * `ward scan import <report>`: sends a Trivy JSON, Grype JSON or CycloneDX VEX report to the
 * server, which turns it into `vuln.*` attributes of every workload running the scanned image.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { ApiError } from '../../../api/errors.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { withAdminClient, withConnection, type ConnectionOptions } from '../get/connection.js';

const MAX_REPORT_BYTES = 32 * 1024 * 1024;

export const registerScan: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('scan').description('Vulnerability scan reports');
  const cmd = noun.command('import <report>').description('Import a Trivy, Grype or CycloneDX VEX JSON report into a running server')
    .option('--image <digest>', 'the image digest (sha256:…) for a report that names none')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat);
  withConnection(cmd).action(async (report: string, opts: ConnectionOptions & { output: OutputFormat; image?: string }) => {
    try {
      let text: string;
      try {
        if (statSync(report).size > MAX_REPORT_BYTES) throw new Error(`larger than ${MAX_REPORT_BYTES} bytes`);
        text = readFileSync(report, 'utf8');
        JSON.parse(text);
      } catch (error) {
        throw new ApiError('ERR_API_INPUT', `cannot read ${report} as JSON: ${(error as Error).message}`);
      }
      const res = await withAdminClient(ctx, opts, (c) => c.importScan(text, opts.image));
      printResult(ctx, opts.output, res, () => `${res.format}: ${res.imageDigests.length} image(s), ${res.workloadsUpdated.length} workload(s) updated${res.workloadsUpdated.length === 0 ? '' : `\n${res.workloadsUpdated.join('\n')}`}`);
    } catch (error) {
      ctx.exitCode = reportError(ctx, opts.output, error);
    }
  });
};
