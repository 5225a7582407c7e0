/**
 * The demo shop: ordinary HTTP services that know nothing about Ward. Each listens on plain
 * HTTP on loopback and calls its dependencies at plain-HTTP URLs from its configuration (in the
 * demo those URLs are the local agent's outbound upstreams). They report the caller identity the
 * agent forwarded (`x-forwarded-client-cert`) so the demo can show who really called.
 *
 * Run: node shop.js <role>   with   PORT=8080  UPSTREAMS=orders=http://127.0.0.1:15001,...
 * Roles: web, orders, payments, catalog, legacy-inventory.
 *
 * `web` has a deliberate server-side request forgery hole (`/debug/fetch`), the kind of bug an
 * attacker uses for lateral movement; the demo exploits it and Ward must stop what follows.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

export const SHOP_ROLES = ['web', 'orders', 'payments', 'catalog', 'legacy-inventory'] as const;
export type ShopRole = (typeof SHOP_ROLES)[number];

interface Reply {
  status: number;
  body: unknown;
}

type Upstreams = Readonly<Record<string, string>>;

export function parseUpstreams(text: string | undefined): Upstreams {
  const out: Record<string, string> = {};
  for (const part of (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`UPSTREAMS entry "${part}" is not name=url`);
    out[part.slice(0, eq)] = new URL(part.slice(eq + 1)).toString().replace(/\/$/, '');
  }
  return out;
}

/** Calls a dependency; network failures become 502 so the caller can show them. */
function call(upstreams: Upstreams, service: string, method: string, path: string, body?: unknown, extraHeaders: Readonly<Record<string, string>> = {}): Promise<Reply> {
  const base = upstreams[service];
  if (base === undefined) return Promise.resolve({ status: 502, body: { error: `no upstream configured for ${service}` } });
  const url = new URL(path, `${base}/`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(url, { method, headers: { ...extraHeaders, ...(payload ? { 'content-type': 'application/json' } : {}) }, timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* keep text */
        }
        resolve({ status: res.statusCode ?? 502, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ status: 502, body: { error: error.message } }));
    req.end(payload);
  });
}

function callerOf(req: IncomingMessage): string {
  const xfcc = req.headers['x-forwarded-client-cert'];
  const value = Array.isArray(xfcc) ? xfcc.join(',') : xfcc;
  const m = value ? /URI=([^;,]+)/.exec(value) : null;
  return m ? (m[1] as string) : 'unauthenticated';
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 65_536) throw new Error('body too large');
  }
  return text ? JSON.parse(text) : undefined;
}

export function shopHandler(role: ShopRole, upstreams: Upstreams) {
  let nextCharge = 1;
  const stock: Record<string, number> = { 'sku-1': 10, 'sku-2': 3 };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://app');
    const caller = callerOf(req);
    let reply: Reply = { status: 404, body: { error: 'not found' } };
    try {
      const route = `${req.method} ${url.pathname}`;
      if (route === 'GET /healthz') reply = { status: 200, body: { ok: true } };
      else if (role === 'web' && route === 'GET /') {
        const [orders, items] = await Promise.all([call(upstreams, 'orders', 'GET', '/v1/orders'), call(upstreams, 'catalog', 'GET', '/v1/items')]);
        reply = { status: orders.status === 200 && items.status === 200 ? 200 : 502, body: { page: 'home', orders, items } };
      } else if (role === 'web' && route === 'POST /checkout') {
        reply = await call(upstreams, 'orders', 'POST', '/v1/orders', { sku: 'sku-1', amount: 42 });
      } else if (role === 'web' && route === 'GET /debug/fetch') {
        // The SSRF hole: fetches any configured service and path on the caller's behalf, even
        // passing along an identity header the caller chose (`xfcc`).
        const xfcc = url.searchParams.get('xfcc');
        reply = await call(upstreams, url.searchParams.get('service') ?? '', url.searchParams.get('method') ?? 'GET', url.searchParams.get('path') ?? '/', undefined, xfcc === null ? {} : { 'x-forwarded-client-cert': xfcc });
      } else if (role === 'web' && route === 'POST /admin/refund-all') {
        reply = await call(upstreams, 'orders', 'POST', '/v1/refund-all');
      } else if (role === 'web' && route === 'GET /whoami') {
        reply = { status: 200, body: { caller } };
      } else if (role === 'orders' && route === 'GET /v1/orders') reply = { status: 200, body: { orders: [{ id: 1, sku: 'sku-1' }], caller } };
      else if (role === 'orders' && route === 'POST /v1/orders') {
        const reserve = await call(upstreams, 'legacy-inventory', 'POST', '/v1/reserve', { sku: 'sku-1' });
        const charge = await call(upstreams, 'payments', 'POST', '/v1/charges', { amount: 42 });
        reply = { status: charge.status === 201 ? 201 : 502, body: { order: 'created', reserve, charge, caller } };
      } else if (role === 'orders' && route === 'POST /v1/refund-all') {
        // Misuse of a payments API orders is not meant to call.
        reply = await call(upstreams, 'payments', 'POST', '/v1/admin/refund-all');
      } else if (role === 'payments' && route === 'POST /v1/charges') {
        await readBody(req);
        reply = { status: 201, body: { charge: nextCharge++, caller } };
      } else if (role === 'payments' && route === 'POST /v1/admin/refund-all') reply = { status: 200, body: { refunded: 'everything', caller } };
      else if (role === 'catalog' && route === 'GET /v1/items') reply = { status: 200, body: { items: ['sku-1', 'sku-2'], caller } };
      else if (role === 'legacy-inventory' && route === 'POST /v1/reserve') {
        const body = (await readBody(req)) as { sku?: string } | undefined;
        const sku = body?.sku ?? '';
        if ((stock[sku] ?? 0) > 0) stock[sku] = (stock[sku] ?? 0) - 1;
        reply = { status: 200, body: { sku, left: stock[sku] ?? 0, caller } };
      } else if (role === 'legacy-inventory' && route.startsWith('GET /inventory/')) {
        reply = { status: 200, body: { sku: url.pathname.slice(11), left: stock[url.pathname.slice(11)] ?? 0, caller } };
      }
    } catch (error) {
      reply = { status: 400, body: { error: (error as Error).message } };
    }
    const text = JSON.stringify({ service: role, ...(reply.body as object) });
    res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
}

/** Entry point of a shop process (see `shop-main.ts`). */
export function runShop(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): void {
  const role = argv[0] as ShopRole;
  if (!SHOP_ROLES.includes(role)) {
    process.stderr.write(`usage: shop <${SHOP_ROLES.join('|')}>\n`);
    process.exitCode = 2;
    return;
  }
  const port = Number(env.PORT ?? '8080');
  const host = env.HOST ?? '127.0.0.1';
  const server = createServer(shopHandler(role, parseUpstreams(env.UPSTREAMS)));
  server.keepAliveTimeout = 30_000;
  server.listen(port, host, () => process.stdout.write(`${role} listening on ${host}:${port}\n`));
  const stop = (): void => void server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
