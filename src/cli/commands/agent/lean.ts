/**
 * The agent's lean-runtime restart (ADR 0073, src/agent/runtime.ts), done once the
 * configuration is known and before anything is bound, read from a server or started.
 */
import type { CliContext } from '../../context.js';
import { currentRuntime, restartIfNeeded, type Execve } from '../../../agent/runtime.js';

export interface RuntimeOutcome {
  readonly runtime: 'lean' | 'default';
  /** Why the process is not on the lean runtime although it was asked for; undefined otherwise. */
  readonly warning: string | undefined;
}

export async function enterRuntime(profile: 'lean' | 'default', ctx: CliContext): Promise<RuntimeOutcome> {
  if (ctx.ownsProcess !== true) return { runtime: currentRuntime(ctx.env), warning: undefined };
  const { loadRelayAddon } = await import('../../../agent/proxy/native/addon.js');
  const exec = (): Execve | string => {
    // A SIGTERM/SIGINT already taken by this image would be lost across the restart.
    if (ctx.signal.aborted) return 'the agent was asked to stop before the restart';
    const load = loadRelayAddon();
    if (!load.ok) return `the native addon is ${load.reason}`;
    const { addon } = load;
    return addon.execve === undefined ? 'the native addon was built before execve (npm run build:native)' : { execve: (path, argv, env) => addon.execve!(path, argv, env) };
  };
  const r = restartIfNeeded(profile, { platform: process.platform, execPath: process.execPath, execArgv: process.execArgv, argv: process.argv, env: process.env }, exec);
  return { runtime: r.runtime, warning: profile === 'lean' && r.runtime !== 'lean' ? r.note : undefined };
}
