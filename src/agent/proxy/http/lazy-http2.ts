/**
 * node:http2, loaded on first use. An agent whose callers and apps speak HTTP/1.1 never loads
 * it, which saves ≈ 1.2 MB of heap and code pages per sidecar (ADR 0073); the first h2/h2c
 * connection pays a one-off load of a few milliseconds.
 */
import { createRequire } from 'node:module';
import type * as Http2Module from 'node:http2';

type Http2 = typeof Http2Module;
let http2: Http2 | undefined;

export function loadHttp2(): Http2 {
  http2 ??= createRequire(import.meta.url)('node:http2') as Http2;
  return http2;
}
