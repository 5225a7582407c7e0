/**
 * Host names for the native relay (ADR 0078). The relay thread never blocks on DNS: it connects
 * only to IP literals. For an upstream `address` or an app `appHost` that is a name, this side
 * resolves it with the system resolver (`dns.lookup`: /etc/hosts, search domains, nsswitch, as
 * the Node data plane's `net.connect` would) and hands one address to the relay with the allow.
 *
 * What a user of Envoy's STRICT_DNS clusters expects:
 * - Addresses are cached and re-resolved every `refreshMs` (default 5 s); connections rotate
 *   over all of them (round robin), so a headless Service or several A records share the load.
 * - A lookup in flight is shared: a burst of connections costs one query.
 * - Fail-static: when a re-resolution fails, the last good addresses stay in use (retried every
 *   `refreshMs`). Sending to a stale address cannot reach the wrong workload: the peer's SPIFFE
 *   ID is still checked in the handshake. A name that never resolved fails the connection
 *   (ERR_AGENT_UPSTREAM), never a guess.
 * - A stale entry answers at once and refreshes in the background, so only a name's very first
 *   connection waits for DNS.
 */
import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type { Clock } from '../../../core/clock.js';
import { AgentError } from '../../errors.js';

/** `dns.lookup` with `{ all: true }`; injectable so the cache can be tested on its own. */
export type LookupAll = (host: string, callback: (error: NodeJS.ErrnoException | null, addresses: readonly LookupAddress[]) => void) => void;

/** `node:dns` loads on the first name (an agent of IP literals never pays for it). */
const systemLookup: LookupAll = (host, callback) => {
  import('node:dns').then(({ lookup }) => lookup(host, { all: true }, callback), (error: NodeJS.ErrnoException) => callback(error, []));
};

export interface ResolverOptions {
  readonly clock: Clock;
  readonly lookup?: LookupAll;
  /** Re-resolution period (ms); default 5000. */
  readonly refreshMs?: number;
}

interface Entry {
  addresses: readonly string[];
  next: number;
  /** When the current addresses were obtained or last re-tried. */
  checkedAt: number;
  inflight: Promise<void> | undefined;
  /** The last failure of a name that has no address yet: repeated for a second, not re-queried. */
  failure: AgentError | undefined;
}

/** How long a name that has never resolved answers its last failure without a new query. */
const NEGATIVE_MS = 1000;

export class HostResolver {
  readonly #clock: Clock;
  readonly #lookup: LookupAll;
  readonly #refreshMs: number;
  readonly #entries = new Map<string, Entry>();
  #lookups = 0;

  constructor(options: ResolverOptions) {
    this.#clock = options.clock;
    this.#lookup = options.lookup ?? systemLookup;
    this.#refreshMs = options.refreshMs ?? 5000;
  }

  /** Lookups started (metrics, tests). */
  get lookups(): number {
    return this.#lookups;
  }

  /**
   * An address for `host`: at once when one is known (rotating over all of them, refreshing in
   * the background once stale), else a promise of the first lookup. An IP literal is itself.
   * Rejects with ERR_AGENT_UPSTREAM when the name has never resolved.
   */
  resolve(host: string): string | Promise<string> {
    if (isIP(host) !== 0) return host;
    let entry = this.#entries.get(host);
    if (entry === undefined) {
      entry = { addresses: [], next: 0, checkedAt: 0, inflight: undefined, failure: undefined };
      this.#entries.set(host, entry);
    }
    const e = entry;
    if (e.addresses.length > 0) {
      if (this.#clock.now() - e.checkedAt >= this.#refreshMs) this.#refresh(host, e).catch(() => undefined);
      return this.#pick(e);
    }
    if (e.failure !== undefined && e.inflight === undefined && this.#clock.now() - e.checkedAt < Math.min(NEGATIVE_MS, this.#refreshMs)) return Promise.reject(e.failure);
    return this.#refresh(host, e).then(() => {
      if (e.addresses.length === 0) throw new AgentError('ERR_AGENT_UPSTREAM', `${host} did not resolve to any address`, { details: { host } });
      return this.#pick(e);
    });
  }

  #pick(e: Entry): string {
    const address = e.addresses[e.next % e.addresses.length] as string;
    e.next = (e.next + 1) % e.addresses.length;
    return address;
  }

  /** One lookup per name at a time; a failure keeps the last good addresses (fail-static). */
  #refresh(host: string, e: Entry): Promise<void> {
    e.inflight ??= new Promise<void>((resolve, reject) => {
      this.#lookups++;
      this.#lookup(host, (error, found) => {
        e.inflight = undefined;
        e.checkedAt = this.#clock.now();
        const addresses = error === null ? [...new Set(found.map((a) => a.address))] : [];
        if (addresses.length > 0) {
          // Keep the rotation where it was when the set is unchanged.
          if (addresses.length !== e.addresses.length || addresses.some((a, i) => a !== e.addresses[i])) e.next = 0;
          e.addresses = addresses;
          e.failure = undefined;
          resolve();
        } else if (e.addresses.length > 0) {
          resolve();
        } else {
          e.failure = new AgentError('ERR_AGENT_UPSTREAM', `${host} did not resolve: ${error?.code ?? 'no address'}`, { details: { host, code: error?.code ?? 'ENODATA' } });
          reject(e.failure);
        }
      });
    });
    return e.inflight;
  }
}
