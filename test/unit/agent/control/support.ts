// Shared by the control-plane client tests: a real `ward server` on SQLite at a fixed agent port
// (so it can be stopped and started again at the same address), shop entries and policies, and
// Trivy reports for the orders image (the real fixture, and the same report with nothing found).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { parseServerConfig } from '../../../../src/server/config.js';
import { initServer, startServer, type RunningServer } from '../../../../src/server/server.js';
import type { TestContext } from 'node:test';
import { WardClient } from '../../../../src/api/client.js';
import type { Clock } from '../../../../src/core/clock.js';
import { FakeKubeApi } from '../../../fakes/kubernetes-api/server.js';
import { makeSelfSigned, type TempDir } from '../../../fakes/pki.js';

export const TD = 'ward.test';
export const ORDERS = `spiffe://${TD}/shop/orders`;
export const PAYMENTS = `spiffe://${TD}/shop/payments`;
export const ORDERS_DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
export const TRIVY_CRITICAL = readFileSync('test/fixtures/scans/trivy-orders.json', 'utf8');

/** The fixture with every finding removed: what Trivy prints for a clean image. */
export function trivyClean(): string {
  const doc = JSON.parse(TRIVY_CRITICAL) as { Results: { Vulnerabilities?: unknown[] }[] };
  for (const r of doc.Results) delete r.Vulnerabilities;
  return JSON.stringify(doc);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class RestartableServer {
  server: RunningServer | undefined;
  admin!: WardClient;
  /** `extra`: more server config (attestors, TTLs); `clock`: the server's clock (default system). */
  constructor(readonly dir: string, readonly agentPort: number, readonly extra: Record<string, unknown> = {}, readonly clock?: Clock) {}

  #config() {
    return parseServerConfig({ dataDir: this.dir, store: `sqlite:${this.dir}/ward.db`, trustDomain: TD, adminListen: '127.0.0.1:0', agentListen: `127.0.0.1:${this.agentPort}`, watchHeartbeat: '5s', ...this.extra });
  }

  #deps() {
    return { config: this.#config(), ...(this.clock === undefined ? {} : { clock: this.clock }) };
  }

  async init(): Promise<void> {
    const init = await initServer(this.#deps());
    await this.start();
    this.admin = new WardClient({ baseUrl: this.server!.adminUrl, token: init.adminToken });
    this.token = init.adminToken;
  }

  token = '';

  async start(): Promise<void> {
    this.server = await startServer(this.#deps());
    if (this.token !== '') {
      this.admin.close();
      this.admin = new WardClient({ baseUrl: this.server.adminUrl, token: this.token });
    }
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  get agentUrl(): string {
    return `https://127.0.0.1:${this.agentPort}`;
  }

  bundlePem(): string {
    return readFileSync(`${this.dir}/bundle.pem`, 'utf8');
  }
}

export const entry = (name: string, spiffeId: string, hostName: string, service: string, ttl = '1h') => ({
  apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name },
  spec: { spiffeId, parentId: '*', nodeSelectors: [`join_token:host-name:${hostName}`], selectors: [`ward:service:${service}`], ttl },
});

export const paymentsPolicy = {
  apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'payments-api' },
  spec: {
    subject: { spiffeIds: [PAYMENTS] }, action: 'ALLOW',
    ingress: [{ from: [{ spiffeIds: [ORDERS], selector: { matchExpressions: ['vuln.critical == 0'] } }], to: [{ ports: [8443], methods: ['POST'], paths: ['/v1/charges'] }] }],
  },
};

/** Polls `pred` every 10 ms; resolves with the elapsed ms, rejects after `timeoutMs`. */
export async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  while (!pred()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

/**
 * The fake Kubernetes API server (real TLS, tokens checked against real time) and the server's
 * `k8s_psat` attestor config for its cluster `prod` (audience `ward`).
 */
export async function fakeKube(t: TestContext, dir: TempDir): Promise<{ api: FakeKubeApi; k8sPsat: Record<string, unknown> }> {
  const saToken = 'ward-server-sa-token';
  const tls = await makeSelfSigned(dir, { name: 'CN=kube-apiserver', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01'), san: ['127.0.0.1', 'localhost'] });
  const api = await FakeKubeApi.start(tls, saToken);
  t.after(() => api.close());
  api.now = () => Date.now();
  return { api, k8sPsat: { clusters: { prod: { apiServer: api.url, caPem: tls.certPem, token: saToken, audience: 'ward' } } } };
}
