/**
 * When to renew an SVID: at half-life, minus a random share of up to a tenth of its lifetime, so
 * a fleet issued at the same moment spreads its renewals instead of stampeding the server.
 * Failed renewals retry with capped exponential backoff until the certificate expires.
 */

/** Share of the lifetime the jitter may pull the renewal earlier. */
export const RENEW_JITTER_FRACTION = 0.1;

/**
 * The renewal time of a certificate valid from `notBefore` to `notAfter` (ms since epoch).
 *
 * @example
 * renewAt(0, 3_600_000, () => 0.5); // 1_620_000: half-life minus 5% of an hour
 */
export function renewAt(notBefore: number, notAfter: number, random: () => number): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  const r = Math.min(1, Math.max(0, random()));
  return notBefore + Math.floor(lifetime / 2 - r * RENEW_JITTER_FRACTION * lifetime);
}

/** Delay before retry `attempt` (0-based) after a failed renewal: 1 s doubling, at most `cap` ms. */
export function retryDelay(attempt: number, capMs: number): number {
  return Math.min(capMs, 1000 * 2 ** Math.min(attempt, 20));
}
