/** `ward spiffe-id parse <id>`: validate a SPIFFE ID and print its parts. */
import type { Command } from 'commander';
import { parseSpiffeId } from '../../../core/spiffe-id.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';

export const registerSpiffeId: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('spiffe-id').description('Work with SPIFFE IDs');
  noun
    .command('parse')
    .description('Validate a SPIFFE ID against the SPIFFE ID spec; print its trust domain and path')
    .argument('<id>', 'the SPIFFE ID, e.g. spiffe://example.org/ns/default/sa/web')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action((text: string, opts: { output: OutputFormat }) => {
      try {
        const id = parseSpiffeId(text);
        const value = { spiffeId: id.toString(), trustDomain: id.trustDomain, path: id.path, segments: id.segments };
        printResult(ctx, opts.output, value, () => `trust domain: ${id.trustDomain}\npath:         ${id.path === '' ? '(none: trust domain ID)' : id.path}`);
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
};
