/**
 * `ward agent --server URL --join-token T --service orders --app-port 8080` and
 * `ward agent run --server … -- <command…>`: the agent in control-plane mode (identity and
 * policy from a `ward server`), on the same proxy flags as static mode.
 */
import { createLogger } from '../../../core/logging.js';
import { AgentError } from '../../../agent/errors.js';
import { startControlledAgent } from '../../../agent/control/agent.js';
import { appPortInbound, resolveControlOptions } from '../../../agent/control/options.js';
import type { CliContext } from '../../context.js';
import type { ControlledFlags } from './control-options.js';
import { resolveAgentConfig } from './options.js';
import { superviseChild } from './child.js';
import { enterRuntime } from './lean.js';
import { appEnvironment } from '../../../agent/runtime.js';

export type { ControlledFlags } from './control-options.js';

function untilAborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Runs the agent against the server until the CLI's signal aborts, or wraps `command`. */
export async function runControlled(flags: ControlledFlags, ctx: CliContext, command?: readonly string[]): Promise<number> {
  if (command !== undefined && command.length === 0) throw new AgentError('ERR_AGENT_CHILD', 'no command given after --');
  const cwd = process.cwd();
  const inbound = [...(flags.inbound ?? []), ...(flags.appPort === undefined ? [] : [appPortInbound(flags.appPort)])];
  const base = resolveAgentConfig({ ...flags, inbound }, cwd, 'control');
  const { proxy, control } = resolveControlOptions(flags, base, cwd);
  const runtime = await enterRuntime(base.runtime, ctx);
  const logger = createLogger({ name: 'ward-agent', level: base.logLevel });
  if (runtime.warning !== undefined) logger.warn({ runtime: runtime.runtime }, `runtime: lean not in effect: ${runtime.warning}`);
  const agent = await startControlledAgent(proxy, control, { clock: ctx.clock, logger });
  ctx.io.stdout(`${JSON.stringify({ ready: true, spiffeId: agent.trust.spiffeId, agentId: agent.control.session.agentId, ports: agent.ports, runtime: runtime.runtime })}\n`);
  runtime.settle(logger);
  let code = 0;
  if (command === undefined) {
    await untilAborted(ctx.signal);
  } else {
    const env: Record<string, string | undefined> = { ...appEnvironment({ ...process.env, ...ctx.env }), WARD_AGENT: '1' };
    if (proxy.httpProxy !== undefined) env.HTTP_PROXY = env.http_proxy = `http://${proxy.httpProxy.host}:${proxy.httpProxy.port}`;
    code = await superviseChild(command, env, ctx);
  }
  await agent.stop();
  return code;
}
