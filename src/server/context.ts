/** Everything a route needs, built once by `server.ts` and passed down (no globals). */
import type { Logger } from '../core/logging.js';
import type { Clock } from '../core/clock.js';
import type { AttestationState } from '../platforms/attestor.js';
import type { AttestorRegistry } from '../platforms/registry.js';
import type { Store } from '../store/index.js';
import type { ServerConfig } from './config.js';
import type { CaPort, PolicyPort, ProvenancePort, ScanPort } from './ports.js';
import type { WatchHub } from './services/watch-hub.js';
import type { RegistryView } from './services/registry-view.js';

export interface ServerContext {
  readonly config: ServerConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: Store;
  readonly ca: CaPort;
  readonly view: RegistryView;
  readonly hub: WatchHub;
  readonly attestors: AttestorRegistry;
  /** Names of node attestors: their selectors are node selectors in entries. */
  readonly nodeAttestors: ReadonlySet<string>;
  /** One-time attestation state (join tokens, instance ids). */
  readonly attestation: AttestationState;
  readonly policies: PolicyPort;
  readonly scans: ScanPort;
  readonly provenance: ProvenancePort;
}

/** After a committed change: bring the view up to date (read-your-writes), then fan out. */
export async function afterChange(ctx: ServerContext): Promise<void> {
  try {
    await ctx.view.refresh();
  } catch (error) {
    // The change is committed; the view catches up on the next change notification.
    ctx.logger.error({ err: error }, 'server: registry refresh after a change failed');
  }
  ctx.hub.changed();
}
