/** An authorized connection handed to the L7 layer (mTLS peer, or plaintext on PERMISSIVE ports). */
import type { ConnectionContext } from '../authorizer.js';
import type { LiveConnection } from '../live-connections.js';

export interface VerifiedConnection {
  readonly ctx: ConnectionContext;
  readonly live: LiveConnection;
  /** Undefined for plaintext callers on PERMISSIVE ports. */
  readonly spiffeId: string | undefined;
  readonly fingerprint256: string | undefined;
  readonly serial: string | undefined;
  /** The identity header value, computed once per connection. */
  identityHeader?: string;
}
