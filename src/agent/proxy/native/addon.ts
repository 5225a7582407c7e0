/**
 * Loads the native L4 relay (native/relay/*.c, built by `npm install` into
 * build/Release/ward_relay.node) and types its surface. The addon moves bytes and does TLS on
 * its own thread; every decision stays in JavaScript (ADR 0049).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RelayEventKind = Object.freeze({
  /** Outbound: a local connection was accepted and waits for the egress decision. */
  Accepted: 1,
  /** TLS handshake done and the chain verified by OpenSSL; `der` is the peer leaf. */
  Peer: 2,
  /** The connection is gone; bytes are what it relayed. */
  Closed: 3,
  /** InboundTlsHandoff, after the Peer allow: `fd` is this side's end of the plaintext socketpair (JavaScript must close it), `alpn` the negotiated protocol. */
  Handoff: 4,
} as const);
export type RelayEventKind = (typeof RelayEventKind)[keyof typeof RelayEventKind];

export const RelayListenerKind = Object.freeze({ InboundTls: 1, OutboundPlain: 2, InboundTlsHandoff: 3 } as const);
export type RelayListenerKind = (typeof RelayListenerKind)[keyof typeof RelayListenerKind];

/** Why the relay closed a connection (static strings from relay.c). */
export type RelayCloseReason = 'eof' | 'idle' | 'handshake' | 'verify' | 'denied' | 'connect' | 'decision' | 'error' | 'closed';

/**
 * `peerIp`: on Peer events of inbound connections, the caller's IP address (for `ipBlocks` rules).
 * `fd`, `alpn`: on Handoff events, the plaintext socketpair end (owned by the handler) and the ALPN protocol.
 */
export type RelayEventHandler = (kind: RelayEventKind, conn: number, listener: number, der: Buffer | undefined, bytesIn: number, bytesOut: number, reason: RelayCloseReason | undefined, relayed: boolean, peerIp: string | undefined, fd: number | undefined, alpn: string) => void;

export interface RelayLimits {
  readonly handshakeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly decisionTimeoutMs: number;
  readonly maxConnections: number;
}

declare const engineBrand: unique symbol;
export type RelayEngine = { readonly [engineBrand]: true };

export interface RelayAddon {
  create(onEvent: RelayEventHandler, limits: RelayLimits): RelayEngine;
  /** Throws an Error with code ERR_RELAY_TLS (OpenSSL's reason in the message) if the material is bad; nothing changes then. */
  setTls(engine: RelayEngine, slot: number, server: boolean, certPem: string, keyPem: string, caPem: string): void;
  /** Binds and listens at once (errors are thrown with an errno code); returns the bound port. */
  listen(engine: RelayEngine, id: number, kind: RelayListenerKind, host: string, port: number, slot: number, targetHost: string, targetPort: number): number;
  unlisten(engine: RelayEngine, id: number): void;
  /**
   * Moves `conn` on from the decision point of the event being answered (`stage`: Accepted or
   * Peer); ignored at any other point, where the decision timeout closes it. Connection ids must
   * come from events (a non-id throws ERR_RELAY_ARG). `target`, an IP literal (else
   * ERR_RELAY_ARG), is what the connection connects to instead of its listener's target: the
   * address of a host name this side resolved (outbound egress allow, inbound TCP peer allow).
   */
  allow(engine: RelayEngine, conn: number, stage: typeof RelayEventKind.Accepted | typeof RelayEventKind.Peer, target?: string): void;
  deny(engine: RelayEngine, conn: number): void;
  close(engine: RelayEngine, conn: number): void;
  /** Keeps the event loop alive (listeners open) or not. */
  ref(engine: RelayEngine, on: boolean): void;
  destroy(engine: RelayEngine): void;
  /** execve(2) for the lean-runtime restart (ADR 0073); returns only by throwing (ERR_RELAY_EXEC). Absent from addons built before it. */
  execve?(path: string, argv: readonly string[], env: readonly string[]): never;
  /**
   * Returns memory start-up no longer needs (ADR 0075): unmaps the clean pages of read-only
   * private file mappings (they map again from the page cache on next use) and trims malloc's
   * free heap. Absent from addons built before it.
   */
  trimMemory?(): MemoryTrim;
}

export interface MemoryTrim {
  /** Resident kB of file pages unmapped. */
  readonly filePagesKb: number;
  /** Mappings released. */
  readonly mappings: number;
  /** Whether malloc_trim gave heap pages back. */
  readonly heapTrimmed: boolean;
}

export type AddonLoad = { readonly ok: true; readonly addon: RelayAddon } | { readonly ok: false; readonly reason: string };

let cached: AddonLoad | undefined;

const ADDON = join('build', 'Release', 'ward_relay.node');

/**
 * The built addon: in the package root, four levels above src/agent/proxy/native or
 * dist/agent/proxy/native, or further up when the code was compiled elsewhere in the tree
 * (bench/results/dist). Undefined when it is nowhere.
 */
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** Loads the addon once; `{ ok: false, reason }` when it was not built or does not load here. */
export function loadRelayAddon(): AddonLoad {
  if (cached !== undefined) return cached;
  const path = findAddon();
  if (process.platform !== 'linux') cached = { ok: false, reason: 'the native relay is built for Linux only' };
  else if (path === undefined) cached = { ok: false, reason: `not built (no ${ADDON} in the package; run npm install or npm run build:native)` };
  else {
    try {
      cached = { ok: true, addon: createRequire(import.meta.url)(path) as RelayAddon };
    } catch (error) {
      cached = { ok: false, reason: `could not be loaded: ${(error as Error).message}` };
    }
  }
  return cached;
}
