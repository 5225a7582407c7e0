/**
 * The agent's lean-runtime restart (ADR 0073, src/agent/runtime.ts), done once the
 * configuration is known and before anything is bound, read from a server or started.
 */
import type { CliContext } from '../../context.js';
import { currentRuntime, restartIfNeeded, type Execve } from '../../../agent/runtime.js';
import type { MemoryTrim } from '../../../agent/proxy/native/addon.js';
import type { Logger } from '../../../core/logging.js';

export interface RuntimeOutcome {
  readonly runtime: 'lean' | 'default';
  /** Why the process is not on the lean runtime although it was asked for; undefined otherwise. */
  readonly warning: string | undefined;
  /**
   * Called once the agent is ready. On the lean runtime (ADR 0075) it releases what only
   * start-up needed, logs it (debug), returns it, and from then on trims every
   * {@link TRIM_INTERVAL_MS}; a no-op returning undefined elsewhere or without the addon.
   */
  readonly settle: (logger: TrimLogger) => MemoryTrim | undefined;
}

type TrimLogger = Pick<Logger, 'debug' | 'warn'>;

/** How often the lean runtime unmaps file pages the agent has stopped using (ADR 0075). */
export const TRIM_INTERVAL_MS = 60_000;

const noSettle = (): undefined => undefined;

/**
 * On the restarted (lean) image: releases the bootstrap's pages at once, before the agent's own
 * start-up adds to the peak, and returns `settle`.
 */
async function settler(runtime: 'lean' | 'default'): Promise<RuntimeOutcome['settle']> {
  if (runtime !== 'lean') return noSettle;
  const { loadRelayAddon } = await import('../../../agent/proxy/native/addon.js');
  const load = loadRelayAddon();
  const addonTrim = load.ok ? load.addon.trimMemory : undefined;
  return addonTrim === undefined ? noSettle : memorySettler(addonTrim);
}

/**
 * Trims once now and returns `settle` over `addonTrim` (exported for tests: a failing trim,
 * which no real process here can be made to produce, must not stop the agent).
 */
export function memorySettler(addonTrim: () => MemoryTrim): RuntimeOutcome['settle'] {
  // An optimisation never stops the agent: where it fails (no /proc/self/smaps in a sandbox),
  // it is off for the life of the process, said once at warn.
  let failure: string | undefined;
  let told = false;
  const trim = (logger?: TrimLogger): MemoryTrim | undefined => {
    if (failure === undefined) {
      try {
        return addonTrim();
      } catch (error) {
        failure = (error as Error).message;
      }
    }
    if (logger !== undefined && !told) {
      told = true;
      logger.warn({ err: failure }, 'memory trim unavailable; the agent runs without it (ADR 0075)');
    }
    return undefined;
  };
  trim();
  let settled = false;
  return (logger) => {
    const released = trim(logger);
    if (released === undefined) return undefined;
    logger.debug({ ...released }, 'start-up memory released');
    if (!settled) {
      settled = true;
      // Pages touched while the JIT warms up, or by a reload, go back within a minute; the
      // working set maps again on its next use (minor faults). Never keeps the process alive.
      setInterval(() => {
        const r = trim(logger);
        if (r !== undefined) logger.debug({ ...r }, 'memory trimmed');
      }, TRIM_INTERVAL_MS).unref();
    }
    return released;
  };
}

export async function enterRuntime(profile: 'lean' | 'default', ctx: CliContext): Promise<RuntimeOutcome> {
  if (ctx.ownsProcess !== true) return { runtime: currentRuntime(ctx.env), warning: undefined, settle: noSettle };
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
  return { runtime: r.runtime, warning: profile === 'lean' && r.runtime !== 'lean' ? r.note : undefined, settle: await settler(r.runtime) };
}
