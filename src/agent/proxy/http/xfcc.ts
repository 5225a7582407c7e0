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

/**
 * True for the identity header in any spelling an app may fold onto it: CGI/WSGI/PHP-style
 * servers (and nginx with `underscores_in_headers`) map `_` and `-` to the same variable, so
 * `X_Forwarded_Client_Cert` from a caller would reach the app as the verified identity.
 * `name` is lower-cased.
 */
export function isIdentityHeaderName(name: string): boolean {
  return name.length === IDENTITY_HEADER.length && (name === IDENTITY_HEADER || name.replaceAll('_', '-') === IDENTITY_HEADER);
}
