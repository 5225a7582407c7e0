/** Header hygiene between the caller, the agent and the app. */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { IDENTITY_HEADER, isIdentityHeaderName } from './xfcc.js';

/** Connection-specific headers (RFC 9110 §7.6.1) never forwarded, plus the identity header. */
const DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', IDENTITY_HEADER, 'host']);

/** Names a `Connection` header may not remove (framing; see h1-wire.ts). */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

/** Request headers to send to the app; `te: trailers` survives (gRPC needs it). */
export function requestHeadersForApp(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionListed(incoming.connection);
  for (const name in incoming) {
    if (name.charCodeAt(0) === 0x3a /* : */ || DROP.has(name) || isIdentityHeaderName(name) || (listed !== undefined && listed.has(name) && !FRAMING.has(name))) continue;
    out[name] = incoming[name];
  }
  if (incoming.te === 'trailers') out.te = 'trailers';
  return out;
}

/** Response headers to send back to the caller. */
export function responseHeadersForCaller(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionListed(incoming.connection);
  for (const name in incoming) {
    if (name.charCodeAt(0) === 0x3a || (DROP.has(name) && name !== IDENTITY_HEADER) || (listed !== undefined && listed.has(name) && !FRAMING.has(name))) continue;
    out[name] = incoming[name];
  }
  return out;
}

function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  return new Set(text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0));
}
