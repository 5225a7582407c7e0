/**
 * `ward agent` — the data plane in static mode (`--config agent.yaml` and/or flags), and
 * `ward agent run [options] -- <command…>`, which starts the app as a child and exits with
 * the app's exit code. With `--server` both run in control-plane mode (control.ts): identity
 * and policy from a `ward server`.
 */
import type { Command } from 'commander';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { reportError } from '../../output.js';
import { addAgentOptions, resolveAgentConfig, type AgentFlags } from './options.js';
import { runAgent, runWrapped } from './run.js';
import { addControlOptions, type ControlledFlags } from './control-options.js';
import { enterRuntime } from './lean.js';

export const registerAgent: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const agent = addControlOptions(addAgentOptions(
    program
      .command('agent')
      .description('Run the Ward data plane: mTLS proxy with network and API policy (static mode, or --server)'),
  )).action(async (flags: AgentFlags & ControlledFlags) => {
    try {
      if (flags.server !== undefined) {
        // The control-plane client (api, pki CSR, attestors) is loaded only in control mode.
        const { runControlled } = await import('./control.js');
        ctx.exitCode = await runControlled(flags, ctx);
        return;
      }
      const config = resolveAgentConfig(flags, process.cwd());
      ctx.exitCode = await runAgent(config, ctx, await enterRuntime(config.runtime, ctx));
    } catch (error) {
      ctx.exitCode = reportError(ctx, 'text', error);
    }
  });
  addControlOptions(addAgentOptions(
    agent
      .command('run')
      .description('Start <command…> as a child protected by the agent; exit with its code')
      .argument('<command...>', 'the application command line, after --'),
  )).action(async (command: string[], flags: AgentFlags & ControlledFlags) => {
    try {
      const merged = { ...agent.opts<AgentFlags & ControlledFlags>(), ...flags };
      if (merged.server !== undefined) {
        const { runControlled } = await import('./control.js');
        ctx.exitCode = await runControlled(merged, ctx, command);
        return;
      }
      const config = resolveAgentConfig({ ...agent.opts<AgentFlags>(), ...flags }, process.cwd());
      ctx.exitCode = await runWrapped(config, command, ctx, await enterRuntime(config.runtime, ctx));
    } catch (error) {
      ctx.exitCode = reportError(ctx, 'text', error);
    }
  });
};
