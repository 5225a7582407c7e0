/**
 * The `ward` command line. `bin/ward.js` calls {@link main}; tests call it in-process.
 */
import { Command, CommanderError } from 'commander';
import { defaultContext, type CliContext } from './context.js';
import { commandRegistrars } from './commands/index.js';
import { reportError } from './output.js';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('ward')
    .description('Ward: zero-trust security for microservices')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) });
  for (const register of commandRegistrars) register(program, ctx);
  // Sub-commands inherit the overrides so usage errors never call process.exit.
  const inherit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) });
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/** Runs the CLI and resolves to the process exit code: 0 ok, 1 failure with a code, 2 usage. */
export async function main(argv: readonly string[], ctx: CliContext = defaultContextWithSignals()): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    return reportError(ctx, 'text', error);
  }
}

function defaultContextWithSignals(): CliContext {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return defaultContext(controller.signal);
}
