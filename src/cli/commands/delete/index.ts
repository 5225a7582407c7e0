/**
 * `ward delete policy <name>`, `ward delete entry <id>`, `ward delete agent <spiffe-id>`.
 * Agents are never erased (their history stays in the audit log): deleting one revokes it, and
 * its SVIDs go to every agent's revocation list.
 */
import type { Command } from 'commander';
import type { WardClient } from '../../../api/client.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { withAdminClient, withConnection, type ConnectionOptions } from '../get/connection.js';

type Opts = ConnectionOptions & { output: OutputFormat };

export const registerDelete: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('delete').description('Delete a policy or registration entry, or revoke an agent, on a running server');
  const verb = (name: string, what: string, run: (c: WardClient, id: string) => Promise<unknown>, text: (id: string) => string): void => {
    const cmd = noun.command(`${name} <id>`).description(what).option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat);
    withConnection(cmd).action(async (id: string, opts: Opts) => {
      try {
        const res = await withAdminClient(ctx, opts, (c) => run(c, id));
        printResult(ctx, opts.output, res, () => text(id));
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
  };
  verb('policy', 'Delete a policy (`name` or `namespace/name`)', (c, id) => c.deletePolicy(id), (id) => `policy/${id} deleted`);
  verb('entry', 'Delete a registration entry', (c, id) => c.deleteEntry(id), (id) => `entry/${id} deleted`);
  verb('agent', 'Revoke an agent and every SVID it was issued', (c, id) => c.revokeAgent(id), (id) => `agent/${id} revoked`);
};
