/**
 * `ward apply -f <file|dir> [--dry-run]`: sends policies and registration entries to the server,
 * all or nothing. Files are read with the policy layer's bounded YAML loader; a directory means
 * every `.yaml`/`.yml`/`.json` under it, sorted.
 */
import type { Command } from 'commander';
import { loadYamlDocuments } from '../../../policy/yaml.js';
import { PolicyError, formatIssue } from '../../../policy/errors.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { readSources } from '../policy/files.js';
import { withAdminClient, withConnection, type ConnectionOptions } from '../get/connection.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Every document of the given files/directories, in order; any YAML problem fails the whole apply. */
export function readDocuments(paths: readonly string[]): unknown[] {
  const docs: unknown[] = [];
  for (const source of readSources(paths)) {
    const { documents, issues } = loadYamlDocuments(source.text, source.file);
    if (issues.length > 0) throw new PolicyError('ERR_POLICY_YAML', issues.map(formatIssue).join('; '), { details: { file: source.file } });
    for (const d of documents) if (d.value !== null && d.value !== undefined) docs.push(d.value);
  }
  return docs;
}

export const registerApply: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const cmd = program.command('apply').description('Create or update policies and registration entries on a running server (all or nothing)')
    .requiredOption('-f, --file <path>', 'a file or directory (repeatable)', collect, [] as string[])
    .option('--dry-run', 'validate on the server and show what would change, store nothing', false)
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat);
  withConnection(cmd).action(async (opts: ConnectionOptions & { file: string[]; dryRun: boolean; output: OutputFormat }) => {
    try {
      const documents = readDocuments(opts.file);
      if (documents.length === 0) throw new PolicyError('ERR_POLICY_YAML', 'no documents found');
      const res = await withAdminClient(ctx, opts, (c) => c.apply(documents, opts.dryRun));
      printResult(ctx, opts.output, res, () => {
        const suffix = res.dryRun ? ' (dry run)' : '';
        return res.results.map((r) => `${r.kind.toLowerCase()}/${r.name} ${r.action}${suffix}`).join('\n');
      });
    } catch (error) {
      ctx.exitCode = reportError(ctx, opts.output, error);
    }
  });
};

