/**
 * The admin endpoint on loopback: `/metrics` (Prometheus text), `/healthz` (the process is
 * alive), `/readyz` (listeners are up and the SVID is within its validity).
 */
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Clock } from '../core/clock.js';
import type { Registry } from 'prom-client';
import type { TrustState } from './proxy/trust.js';

/** Not ready while the SVID is outside its validity window (fail closed on expiry). */
export function notReady(trust: TrustState, clock: Clock): string | undefined {
  const leaf = new X509Certificate(trust.material.certPem);
  const now = clock.now();
  if (now < Date.parse(leaf.validFrom)) return 'svid_not_yet_valid';
  if (now >= Date.parse(leaf.validTo)) return 'svid_expired';
  return undefined;
}

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  /** Undefined when ready, else a short reason code. */
  readonly notReady: () => string | undefined;
}

export function registryMetrics(registry: Registry): () => Promise<{ contentType: string; body: string }> {
  return async () => ({ contentType: registry.contentType, body: await registry.metrics() });
}

export class AdminServer {
  readonly #server: Server;

  constructor(private readonly options: AdminOptions) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const reason = options.notReady();
        res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(reason === undefined ? 'ready\n' : `not ready: ${reason}\n`);
      } else if (path === '/metrics') {
        options.metrics().then(
          ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
          () => res.writeHead(500).end(),
        );
      } else {
        res.writeHead(404).end();
      }
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.options.port, this.options.host, () => {
        this.#server.off('error', reject);
        resolve((this.#server.address() as { port: number }).port);
      });
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
