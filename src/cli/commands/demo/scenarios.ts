/**
 * The demo's traffic: what the shop normally does, and what an attacker tries. Each scenario
 * says what Ward should decide, what happened on the wire, and why — the policy engine's own
 * explanation (`ward explain`) computed from the applied policies and the live attributes.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { compilePolicies, explain, parsePolicyDocuments, type CompiledPolicySet, type Policy } from '../../../policy/index.js';
import type { ShopRole } from './apps/shop.js';
import { trivyReport } from './artifacts.js';
import type { Fleet } from './fleet.js';
import { demoPolicies, serviceSpiffeId } from './policies.js';

export type Verdict = 'allow' | 'deny';

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly from: string;
  readonly to: string;
  readonly request: string;
  readonly expected: Verdict;
  readonly observed: Verdict;
  readonly ok: boolean;
  /** HTTP status the caller saw, or null when the connection was refused. */
  readonly status: number | null;
  /** One line from the policy engine: `ALLOW by …` / `DENY: …`. */
  readonly decision: string;
  /** The full `ward explain` text. */
  readonly explanation: readonly string[];
  readonly detail?: string;
  /** Scan scenario: ms from the scan import to the first denied call. */
  readonly tookMs?: number;
}

interface HttpReply {
  status: number;
  body: Record<string, unknown>;
}

/** A plain HTTP call (the driver has no identity: it is a user on the internet). */
export function httpCall(url: string, method: string, path: string, headers: Record<string, string> = {}, timeoutMs = 8000): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url.replace(/^https:/, 'http:'));
    const req = request(u, { method, headers: { ...headers, connection: 'close' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Sends a plaintext HTTP request to a TCP port; resolves with the first bytes answered ('' when closed without any). */
export function plaintextProbe(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect(port, host, () => s.write('POST /v1/charges HTTP/1.1\r\nHost: payments\r\nContent-Length: 2\r\n\r\n{}'));
    const done = (): void => {
      s.destroy();
      resolve(got);
    };
    s.setTimeout(timeoutMs, done);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.length > 64) done();
    });
    s.on('error', done);
    s.on('close', done);
  });
}

/** Compiles the demo policies with the workloads' live attributes, as `ward explain` does. */
export async function liveExplainer(fleet: Fleet): Promise<(from: ShopRole | 'unauthenticated', to: ShopRole, method: string, path: string) => { decision: string; lines: string[] }> {
  const policies: Policy[] = [];
  for (const doc of demoPolicies()) policies.push(...parsePolicyDocuments(JSON.stringify(doc)).policies);
  const workloads = (await fleet.admin.listWorkloads()).items.map((w) => ({ spiffeId: w.spiffeId, attributes: w.attributes }));
  const set: CompiledPolicySet = compilePolicies({ policies, workloads });
  return (from, to, method, path) => {
    const e = explain(set, {
      source: from === 'unauthenticated' ? { unauthenticated: true } : { spiffeId: serviceSpiffeId(from) },
      destination: { spiffeId: serviceSpiffeId(to) },
      port: fleet.services.get(to)!.inboundPort,
      http: { method, path },
    });
    return { decision: (e.summary[0] ?? '').replace(/^decision: /, ''), lines: [...e.summary] };
  };
}

function result(base: Omit<ScenarioResult, 'ok' | 'decision' | 'explanation'>, why: { decision: string; lines: string[] }): ScenarioResult {
  return { ...base, ok: base.expected === base.observed, decision: why.decision, explanation: why.lines };
}

const checkout = (fleet: Fleet) => httpCall(fleet.url('web'), 'POST', '/checkout');

/** Runs every scenario in order; `onResult` sees each as it completes (for the story). */
export async function runScenarios(fleet: Fleet, onResult: (r: ScenarioResult) => void = () => undefined): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = [];
  const push = (r: ScenarioResult): void => {
    out.push(r);
    onResult(r);
  };
  let why = await liveExplainer(fleet);

  const home = await httpCall(fleet.url('web'), 'GET', '/');
  const inner = home.body as { orders?: { status?: number }; items?: { status?: number } };
  push(result({ id: 'browse', title: 'a user opens the shop: web calls orders and catalog', from: 'web', to: 'orders, catalog', request: 'GET /v1/orders, GET /v1/items', expected: 'allow', observed: home.status === 200 ? 'allow' : 'deny', status: home.status, detail: `orders ${inner.orders?.status}, catalog ${inner.items?.status}` }, why('web', 'orders', 'GET', '/v1/orders')));

  const co = await checkout(fleet);
  const coBody = co.body as { reserve?: { status?: number }; charge?: { status?: number; body?: { caller?: string } } };
  push(result({ id: 'checkout', title: 'a user checks out: orders reserves stock on the VM and charges payments', from: 'orders', to: 'legacy-inventory, payments', request: 'POST /v1/reserve, POST /v1/charges', expected: 'allow', observed: co.status === 201 ? 'allow' : 'deny', status: co.status, detail: `inventory ${coBody.reserve?.status}, payments ${coBody.charge?.status} (payments saw caller ${coBody.charge?.body?.caller ?? '?'})` }, why('orders', 'payments', 'POST', '/v1/charges')));

  const pay = fleet.services.get('payments')!;
  const probe = await plaintextProbe(pay.address, pay.inboundPort);
  push(result({ id: 'plaintext-to-mtls', title: 'an attacker on the network sends plaintext HTTP to the payments mTLS port', from: 'unauthenticated', to: 'payments', request: 'POST /v1/charges (no TLS)', expected: 'deny', observed: probe.startsWith('HTTP/') ? 'allow' : 'deny', status: probe.startsWith('HTTP/') ? Number(probe.slice(9, 12)) : null, detail: probe === '' ? 'connection closed, no HTTP answer' : `answered: ${JSON.stringify(probe.slice(0, 40))}` }, why('unauthenticated', 'payments', 'POST', '/v1/charges')));

  const lateral = await httpCall(fleet.url('web'), 'GET', '/debug/fetch?service=payments&method=POST&path=/v1/charges');
  push(result({ id: 'lateral-web-to-payments', title: 'lateral movement: the attacker uses web\'s SSRF hole (/debug/fetch) to charge payments', from: 'web', to: 'payments', request: 'POST /v1/charges', expected: 'deny', observed: lateral.status >= 200 && lateral.status < 300 ? 'allow' : 'deny', status: lateral.status }, why('web', 'payments', 'POST', '/v1/charges')));

  const refund = await httpCall(fleet.url('web'), 'POST', '/admin/refund-all');
  push(result({ id: 'orders-admin-api', title: 'orders calls a payments API it may not use (refund everything)', from: 'orders', to: 'payments', request: 'POST /v1/admin/refund-all', expected: 'deny', observed: refund.status >= 200 && refund.status < 300 ? 'allow' : 'deny', status: refund.status, detail: JSON.stringify(refund.body).slice(0, 160) }, why('orders', 'payments', 'POST', '/v1/admin/refund-all')));

  const forged = `By=${serviceSpiffeId('orders')};URI=${serviceSpiffeId('payments')}`;
  const fake = await httpCall(fleet.url('web'), 'GET', `/debug/fetch?service=orders&path=/v1/orders&xfcc=${encodeURIComponent(forged)}`);
  const seen = String((fake.body as { caller?: unknown }).caller ?? '');
  push(result({ id: 'forged-identity-header', title: 'web forwards a forged x-forwarded-client-cert claiming to be payments', from: 'web', to: 'orders', request: 'GET /v1/orders + forged XFCC', expected: 'deny', observed: seen === serviceSpiffeId('payments') ? 'allow' : 'deny', status: fake.status, detail: `orders saw caller ${seen || '?'} (the agent replaced the forged header)` }, why('web', 'orders', 'GET', '/v1/orders')));

  // A scanner finds a critical CVE in the orders image: its next calls to payments must fail.
  const t0 = performance.now();
  await fleet.admin.importScan(trivyReport('orders', true));
  let tookMs: number | undefined;
  let last: HttpReply | undefined;
  while (performance.now() - t0 < 5000) {
    last = await checkout(fleet);
    if (last.status !== 201) {
      tookMs = Math.round(performance.now() - t0);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  why = await liveExplainer(fleet);
  const denied = tookMs !== undefined;
  const r = result({ id: 'scan-marks-orders-critical', title: 'a Trivy scan marks orders critical: its charges to payments stop', from: 'orders', to: 'payments', request: 'POST /v1/charges', expected: 'deny', observed: denied ? 'deny' : 'allow', status: last?.status ?? null, detail: denied ? `denied ${tookMs} ms after the scan was imported` : 'still allowed 5 s after the scan', ...(tookMs === undefined ? {} : { tookMs }) }, why('orders', 'payments', 'POST', '/v1/charges'));
  push({ ...r, ok: r.ok && tookMs !== undefined && tookMs <= 1000 });

  // The image is rebuilt and rescanned clean: checkout works again.
  await fleet.admin.importScan(trivyReport('orders', false));
  const t1 = performance.now();
  let back: HttpReply | undefined;
  while (performance.now() - t1 < 5000) {
    back = await checkout(fleet);
    if (back.status === 201) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  why = await liveExplainer(fleet);
  push(result({ id: 'scan-fixed', title: 'a clean rescan of orders: checkout works again', from: 'orders', to: 'payments', request: 'POST /v1/charges', expected: 'allow', observed: back?.status === 201 ? 'allow' : 'deny', status: back?.status ?? null }, why('orders', 'payments', 'POST', '/v1/charges')));
  return out;
}

export interface TrafficStats {
  requests: number;
  ok: number;
  failed: number;
  /** First few failures, for diagnostics. */
  failures: string[];
}

/** Normal shop traffic (browse and checkout alternately) until `signal` aborts. */
export async function runTraffic(fleet: Fleet, signal: AbortSignal, stats: TrafficStats = { requests: 0, ok: 0, failed: 0, failures: [] }, pauseMs = 100): Promise<TrafficStats> {
  let n = 0;
  while (!signal.aborted) {
    const browse = n++ % 2 === 0;
    try {
      // A generous timeout: a slow answer on a loaded machine is not a failure; a refused one is.
      const r = await httpCall(fleet.url('web'), browse ? 'GET' : 'POST', browse ? '/' : '/checkout', {}, 20_000);
      stats.requests += 1;
      if (r.status === (browse ? 200 : 201)) stats.ok += 1;
      else {
        stats.failed += 1;
        if (stats.failures.length < 10) stats.failures.push(`${browse ? 'GET /' : 'POST /checkout'}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    } catch (error) {
      stats.requests += 1;
      stats.failed += 1;
      if (stats.failures.length < 10) stats.failures.push(`${browse ? 'GET /' : 'POST /checkout'}: ${(error as Error).message}`);
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, pauseMs);
      signal.addEventListener('abort', done, { once: true });
    });
  }
  return stats;
}
