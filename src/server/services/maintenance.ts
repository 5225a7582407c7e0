/**
 * Store maintenance as a singleton job: every replica ticks on its own timer, and
 * {@link Store.singleton} lets exactly one of them do the work per interval (a PostgreSQL
 * advisory lock plus a last-run mark in the store; SQLite's write lock for one file). One run
 * prunes, in one transaction:
 * - attestation state (join tokens, replay records) past its expiry,
 * - legacy join tokens and revocations past their expiry,
 * - change-log rows older than `changeLogRetention` (a watcher further behind gets `compacted`
 *   and resyncs in full; the newest row is always kept),
 * - ingested events older than `eventRetention`.
 */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logging.js';
import type { SingletonRun, Store } from '../../store/index.js';
import type { ServerConfig } from '../config.js';

export const PRUNE_JOB = 'prune';

export interface PruneReport {
  readonly attestationCredentials: number;
  readonly attestationConsumed: number;
  readonly joinTokens: number;
  readonly revocations: number;
  readonly changes: number;
  readonly events: number;
}

export interface PruneJobOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: Pick<ServerConfig, 'pruneIntervalMs' | 'changeLogRetentionMs' | 'eventRetentionMs'>;
}

export interface PruneJob {
  /** One tick: runs the prune unless another replica holds the job or ran it this interval. */
  runOnce(): Promise<SingletonRun<PruneReport>>;
  stop(): void;
}

/**
 * Runs a prune now if due. Replicas tick every `pruneIntervalMs`; a run is skipped when the
 * last one (by any replica) is less than half an interval old, which tolerates timer drift
 * while keeping to about one run per interval across the fleet.
 */
export function runPrune(options: PruneJobOptions): Promise<SingletonRun<PruneReport>> {
  const { store, clock, config } = options;
  return store.singleton(PRUNE_JOB, Math.floor(config.pruneIntervalMs / 2), async (tx) => {
    const now = clock.now();
    const attestation = await tx.attestation.pruneExpired(now);
    const joinTokens = await tx.joinTokens.pruneExpired();
    const revocations = await tx.revocations.pruneExpired();
    const changes = await tx.changes.pruneOlderThan(now - config.changeLogRetentionMs);
    const events = await tx.events.pruneBefore(now - config.eventRetentionMs);
    return { attestationCredentials: attestation.credentials, attestationConsumed: attestation.consumed, joinTokens, revocations, changes, events };
  });
}

/** Starts the periodic job (timer unref'd: it never keeps the process alive). */
export function startPruneJob(options: PruneJobOptions): PruneJob {
  let running: Promise<unknown> | null = null;
  const runOnce = async (): Promise<SingletonRun<PruneReport>> => {
    const out = await runPrune(options);
    if (out.ran) options.logger.debug({ pruned: out.result }, 'server: store pruned');
    return out;
  };
  const timer = setInterval(() => {
    if (running) return;
    running = runOnce()
      .catch((error: unknown) => options.logger.warn({ err: error }, 'server: store prune failed; retrying next interval'))
      .finally(() => { running = null; });
  }, options.config.pruneIntervalMs);
  timer.unref();
  return {
    runOnce,
    stop: () => clearInterval(timer),
  };
}
