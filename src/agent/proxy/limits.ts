/** Timeouts and size limits of the proxy layers, with their units, defaults in one place. */
export interface ProxyLimits {
  /** Time allowed for the first byte (protocol detection) on PERMISSIVE ports. */
  readonly detectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** L4 connections idle this long are closed; L7 keep-alive connections too. */
  readonly idleTimeoutMs: number;
  /** Time allowed to receive a request's headers (slow-loris bound). */
  readonly headersTimeoutMs: number;
  /** Time allowed to receive a whole request. */
  readonly requestTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxConnections: number;
  readonly maxConcurrentStreams: number;
  readonly connectTimeoutMs: number;
}

export const DEFAULT_LIMITS: ProxyLimits = Object.freeze({
  detectTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  maxHeaderBytes: 16 * 1024,
  maxConnections: 10_000,
  maxConcurrentStreams: 100,
  connectTimeoutMs: 5_000,
});
