/**
 * The verified-caller header given to the app, in the style of Envoy's
 * `x-forwarded-client-cert`: `By=<this workload>;Hash=<sha256 of peer cert>;URI=<peer SPIFFE ID>`.
 * Copies arriving from outside are always removed before the request is forwarded.
 */
export const IDENTITY_HEADER = 'x-forwarded-client-cert';

export function identityHeaderValue(self: string, peer: string, fingerprint256: string | undefined): string {
  const hash = fingerprint256 === undefined ? '' : `;Hash=${fingerprint256.replaceAll(':', '').toLowerCase()}`;
  return `By=${self}${hash};URI=${peer}`;
}
