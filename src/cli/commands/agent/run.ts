/** Runs the agent until the CLI's signal aborts, or wraps an application child process. */
import type { CliContext } from '../../context.js';
import { superviseChild } from './child.js';
import { createLogger } from '../../../core/logging.js';
import { AgentError } from '../../../agent/errors.js';
import type { AgentConfig } from '../../../agent/config.js';
import { startAgent, type RunningAgent } from '../../../agent/agent.js';
import { appEnvironment } from '../../../agent/runtime.js';
import type { RuntimeOutcome } from './lean.js';

async function start(config: AgentConfig, ctx: CliContext, runtime: RuntimeOutcome): Promise<{ stop(): Promise<void> }> {
  const logger = createLogger({ name: 'ward-agent', level: config.logLevel });
  if (runtime.warning !== undefined) logger.warn({ runtime: runtime.runtime }, `runtime: lean not in effect: ${runtime.warning}`);
  if (config.workers > 1) {
    // node:cluster and prom-client's aggregator only when workers are asked for (ADR 0044).
    const { startCluster, isPrimary } = await import('../../../agent/cluster.js');
    const running = await startCluster(config, { clock: ctx.clock, logger });
    if (isPrimary()) ctx.io.stdout(`${JSON.stringify({ ready: true, workers: config.workers, runtime: runtime.runtime })}\n`);
    runtime.settle(logger); // the primary and each worker: every one is a process of its own
    return running;
  }
  const agent: RunningAgent = await startAgent(config, { clock: ctx.clock, logger });
  ctx.io.stdout(`${JSON.stringify({ ready: true, spiffeId: agent.trust.spiffeId, ports: agent.ports, runtime: runtime.runtime })}\n`);
  runtime.settle(logger);
  return agent;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export async function runAgent(config: AgentConfig, ctx: CliContext, runtime: RuntimeOutcome): Promise<number> {
  const agent = await start(config, ctx, runtime);
  await untilAborted(ctx.signal);
  await agent.stop();
  return 0;
}

/** Starts the agent, then the app; the app's exit stops the agent with the same exit code. */
export async function runWrapped(config: AgentConfig, command: readonly string[], ctx: CliContext, runtime: RuntimeOutcome): Promise<number> {
  if (command.length === 0) throw new AgentError('ERR_AGENT_CHILD', 'no command given after --');
  const agent = await start(config, ctx, runtime);
  const env: Record<string, string | undefined> = { ...appEnvironment({ ...process.env, ...ctx.env }), WARD_AGENT: '1' };
  if (config.httpProxy !== undefined) {
    const proxy = `http://${config.httpProxy.host}:${config.httpProxy.port}`;
    env.HTTP_PROXY = proxy;
    env.http_proxy = proxy;
  }
  const code = await superviseChild(command, env, ctx);
  await agent.stop();
  return code;
}

