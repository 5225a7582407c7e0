/**
 * The `ward` command line. `bin/ward.js` calls {@link main}; tests call it in-process.
 */
import { Command, CommanderError } from 'commander';
import { defaultContext, type CliContext } from './context.js';
import { commandLoaders } from './commands/index.js';
import { reportError } from './output.js';

/**
 * Builds the program with the commands `argv` needs: only the named noun when it is known,
 * every noun otherwise (help, version, a typo that deserves the full list).
 */
export async function buildProgram(ctx: CliContext, argv: readonly string[] = []): Promise<Command> {
  const program = new Command('ward')
    .description('Ward: zero-trust security for microservices')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) });
  const noun = argv.find((a) => !a.startsWith('-'));
  const nouns = noun !== undefined && Object.hasOwn(commandLoaders, noun) ? [noun] : Object.keys(commandLoaders);
  for (const name of nouns) {
    const register = await commandLoaders[name]!();
    register(program, ctx);
  }
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
  const program = await buildProgram(ctx, argv);
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
