// The demo shop apps, wired directly (no Ward): the call graph works and they report callers
// from the x-forwarded-client-cert header only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { shopHandler, parseUpstreams, type ShopRole } from '../../../src/cli/commands/demo/apps/shop.js';

async function start(role: ShopRole, upstreams: Record<string, string>): Promise<{ server: Server; url: string }> {
  const server = createServer(shopHandler(role, upstreams));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('checkout flows web -> orders -> inventory + payments', async () => {
  const payments = await start('payments', {});
  const inventory = await start('legacy-inventory', {});
  const orders = await start('orders', { payments: payments.url, 'legacy-inventory': inventory.url });
  const web = await start('web', { orders: orders.url });
  try {
    const res = await fetch(`${web.url}/checkout`, { method: 'POST' });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { charge: { body: { charge: number } }; reserve: { body: { left: number } } };
    assert.equal(body.charge.body.charge, 1);
    assert.equal(body.reserve.body.left, 9);
    const who = await fetch(`${payments.url}/v1/charges`, { method: 'POST', headers: { 'x-forwarded-client-cert': 'By=spiffe://d/payments;URI=spiffe://d/orders' }, body: '{}' });
    assert.equal(((await who.json()) as { caller: string }).caller, 'spiffe://d/orders');
    const missing = await fetch(`${web.url}/debug/fetch?service=payments&path=/v1/charges`);
    assert.equal(missing.status, 502, 'web has no upstream for payments configured');
  } finally {
    for (const s of [payments, inventory, orders, web]) s.server.close();
  }
});

test('UPSTREAMS parsing rejects malformed entries', () => {
  assert.deepEqual(parseUpstreams('orders=http://127.0.0.1:1/, catalog=http://127.0.0.1:2'), { orders: 'http://127.0.0.1:1', catalog: 'http://127.0.0.1:2' });
  assert.deepEqual(parseUpstreams(undefined), {});
  assert.throws(() => parseUpstreams('orders'));
  assert.throws(() => parseUpstreams('orders=not a url'));
});
