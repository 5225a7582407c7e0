/**
 * The agent's lean runtime (ADR 0073). A sidecar's memory is mostly Node's and V8's defaults,
 * which are tuned for throughput on big machines: a young generation that grows to 3 × 16 MiB
 * under load, V8 background threads, and one glibc malloc arena per thread. None of these can
 * be changed once the process runs, so `runtime: lean` (the default) restarts the agent once,
 * in place (execve: same PID, same descriptors, same parent), before it binds or reads anything
 * but its configuration:
 *
 *   node --optimize-for-size --single-threaded <the user's node flags> <script> <args>
 *   with MALLOC_ARENA_MAX=1 unless the environment already sets it
 *
 * The user's own node flags come after ours, so they win. `WARD_AGENT_RUNTIME` marks the
 * restarted process (`lean:<variables we added>`) so it never restarts twice, and
 * {@link appEnvironment} takes our additions out of a wrapped application's environment.
 */

/** V8 flags of the lean runtime: heap sizing for size over speed, no V8 worker threads. */
export const LEAN_NODE_FLAGS: readonly string[] = Object.freeze(['--optimize-for-size', '--single-threaded']);
/** Environment of the lean runtime, each set only when the user has not set it. */
export const LEAN_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_ARENA_MAX: '1' });
export const RUNTIME_MARKER = 'WARD_AGENT_RUNTIME';

export interface ProcessFacts {
  readonly platform: string;
  readonly execPath: string;
  readonly execArgv: readonly string[];
  /** process.argv: [node, script, ...args]. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
}

export type RestartPlan =
  | { readonly restart: true; readonly path: string; readonly argv: readonly string[]; readonly env: readonly string[] }
  | { readonly restart: false; readonly runtime: 'lean' | 'default'; readonly reason: string };

/** What the process runs on now, from the marker. */
export function currentRuntime(env: Readonly<Record<string, string | undefined>>): 'lean' | 'default' {
  return env[RUNTIME_MARKER]?.startsWith('lean') === true ? 'lean' : 'default';
}

/** Decides whether and how to restart; pure. */
export function planRestart(profile: 'lean' | 'default', facts: ProcessFacts): RestartPlan {
  if (facts.env[RUNTIME_MARKER] !== undefined) return { restart: false, runtime: currentRuntime(facts.env), reason: 'already restarted' };
  if (profile !== 'lean') return { restart: false, runtime: 'default', reason: 'runtime: default' };
  if (facts.platform !== 'linux') return { restart: false, runtime: 'default', reason: 'the lean runtime restart is implemented for Linux only' };
  const script = facts.argv[1];
  // `node -e`/`-p` or a REPL has no script to run again.
  if (script === undefined || facts.execArgv.some((a) => a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a.startsWith('--eval=') || a.startsWith('--print='))) {
    return { restart: false, runtime: 'default', reason: 'no script to restart (node -e)' };
  }
  const added: string[] = [];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(facts.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(LEAN_ENV)) {
    if (env[k] === undefined) {
      env[k] = v;
      added.push(k);
    }
  }
  env[RUNTIME_MARKER] = `lean:${added.join(',')}`;
  return {
    restart: true,
    path: facts.execPath,
    argv: [facts.execPath, ...LEAN_NODE_FLAGS, ...facts.execArgv, ...facts.argv.slice(1)],
    env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
  };
}

/** The environment for a wrapped application: without the marker and the variables the restart added. */
export function appEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  const marker = env[RUNTIME_MARKER];
  if (marker !== undefined) {
    for (const k of marker.slice(marker.indexOf(':') + 1).split(',').filter(Boolean)) delete out[k];
    delete out[RUNTIME_MARKER];
  }
  return out;
}

export interface Execve {
  execve(path: string, argv: readonly string[], env: readonly string[]): never;
}

/**
 * Restarts this process on the lean runtime when the plan says so; returns only when it does
 * not restart (with why), including when execve is unavailable or fails, in which case the
 * agent carries on with Node's defaults.
 */
export function restartIfNeeded(profile: 'lean' | 'default', facts: ProcessFacts, exec: () => Execve | string): { readonly runtime: 'lean' | 'default'; readonly note: string } {
  const plan = planRestart(profile, facts);
  if (!plan.restart) return { runtime: plan.runtime, note: plan.reason };
  const e = exec();
  if (typeof e === 'string') return { runtime: 'default', note: `lean runtime unavailable: ${e}` };
  try {
    return e.execve(plan.path, plan.argv, plan.env);
  } catch (error) {
    return { runtime: 'default', note: `lean runtime restart failed: ${(error as Error).message}` };
  }
}
