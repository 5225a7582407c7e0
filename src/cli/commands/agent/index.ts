/**
 * `ward agent` — the data plane in static mode (`--config agent.yaml` and/or flags), and
 * `ward agent run [options] -- <command…>`, which starts the app as a child and exits with
 * the app's exit code. The control-plane mode (`--server`, `--join-token`) comes with the
 * server's agent API.
 */
import type { Command } from 'commander';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { reportError } from '../../output.js';
import { addAgentOptions, resolveAgentConfig, type AgentFlags } from './options.js';
import { runAgent, runWrapped } from './run.js';

export const registerAgent: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const agent = addAgentOptions(
    program
      .command('agent')
      .description('Run the Ward data plane: mTLS proxy with network and API policy (static mode)'),
  ).action(async (flags: AgentFlags) => {
    try {
      const config = resolveAgentConfig(flags, process.cwd());
      ctx.exitCode = await runAgent(config, ctx);
    } catch (error) {
      ctx.exitCode = reportError(ctx, 'text', error);
    }
  });
  addAgentOptions(
    agent
      .command('run')
      .description('Start <command…> as a child protected by the agent; exit with its code')
      .argument('<command...>', 'the application command line, after --'),
  ).action(async (command: string[], flags: AgentFlags) => {
    try {
      const config = resolveAgentConfig({ ...agent.opts<AgentFlags>(), ...flags }, process.cwd());
      ctx.exitCode = await runWrapped(config, command, ctx);
    } catch (error) {
      ctx.exitCode = reportError(ctx, 'text', error);
    }
  });
};
