/**
 * Multi-process mode (`workers: N`): N worker processes, each a full agent, share the
 * listening ports through node:cluster (the primary distributes accepted connections
 * round-robin). Each worker reloads the static files itself, so a policy change or rotation
 * reaches every worker within one reload interval. The primary serves the admin endpoint
 * with metrics aggregated across workers, and replaces a worker that dies.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logging.js';
import { AdminServer } from './admin.js';
import { startAgent } from './agent.js';
import type { AgentConfig } from './config.js';

const READY = 'ward:agent-ready';

export async function startCluster(config: AgentConfig, deps: { clock: Clock; logger: Logger }): Promise<{ stop(): Promise<void> }> {
  if (cluster.isWorker) {
    const agent = await startAgent(config, { ...deps, noAdmin: true, workerId: cluster.worker?.id });
    // Constructing one installs prom-client's worker-side listener that answers the primary.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([agent.metrics.registry]);
    process.send?.({ type: READY });
    return {
      async stop() {
        await agent.stop();
        cluster.worker?.disconnect();
      },
    };
  }
  const ready = new Set<number>();
  let stopping = false;
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (m: { type?: string }) => {
      if (m?.type === READY) ready.add(worker.id);
    });
    worker.once('exit', (code) => {
      ready.delete(worker.id);
      if (!stopping) {
        deps.logger.warn({ worker: worker.id, code }, 'agent worker exited; replacing it');
        setTimeout(fork, 500).unref();
      }
    });
    return worker;
  };
  for (let i = 0; i < config.workers; i++) fork();
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready.size >= config.workers) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
    setTimeout(() => {
      clearInterval(timer);
      reject(new Error('agent workers did not become ready'));
    }, 30_000).unref();
  });
  const aggregator = new AggregatorRegistry();
  let admin: AdminServer | undefined;
  if (config.admin !== undefined) {
    admin = new AdminServer({
      ...config.admin,
      metrics: async () => ({ contentType: aggregator.contentType, body: await (await aggregator.clusterMetrics()).toString() }),
      notReady: () => (ready.size < config.workers ? 'workers_not_ready' : undefined),
    });
    await admin.listen();
  }
  deps.logger.info({ workers: config.workers }, 'agent workers ready');
  return {
    async stop() {
      stopping = true;
      await admin?.close();
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
        if (w.isDead()) return resolve();
        w.once('exit', () => resolve());
        w.process.kill('SIGTERM');
      })));
    },
  };
}

/** True in the process that owns the workers (or when not clustered). */
export function isPrimary(): boolean {
  return cluster.isPrimary;
}
