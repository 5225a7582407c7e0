// The shared platform HTTP client: bounded bodies, stable codes, no hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expectStatus, jsonBody, platformRequest } from '../../../src/platforms/http.js';

async function withServer(handler: Parameters<typeof createServer>[1], fn: (url: string) => Promise<void>): Promise<void> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test('bodies over the limit are refused with ERR_PLATFORM_RESPONSE_TOO_LARGE', async () => {
  await withServer((_req, res) => res.end(Buffer.alloc(4096, 120)), async (url) => {
    await assert.rejects(platformRequest({ url, maxBodyBytes: 1024 }), { code: 'ERR_PLATFORM_RESPONSE_TOO_LARGE' });
    assert.equal((await platformRequest({ url, maxBodyBytes: 4096 })).body.length, 4096);
  });
});

test('a server that never answers times out with ERR_PLATFORM_UNREACHABLE', async () => {
  await withServer(() => undefined, async (url) => {
    await assert.rejects(platformRequest({ url, timeoutMs: 100 }), { code: 'ERR_PLATFORM_UNREACHABLE' });
  });
});

test('statuses and JSON are checked with stable codes; non-http schemes are refused', async () => {
  await withServer((_req, res) => { res.statusCode = 500; res.end('{not json'); }, async (url) => {
    const res = await platformRequest({ url });
    assert.throws(() => expectStatus(res, 'x'), { code: 'ERR_PLATFORM_HTTP_STATUS' });
    assert.throws(() => jsonBody(res, 'x'), { code: 'ERR_PLATFORM_RESPONSE_INVALID' });
  });
  await assert.rejects(platformRequest({ url: 'file:///etc/passwd' }), { code: 'ERR_PLATFORM_UNREACHABLE' });
  await assert.rejects(platformRequest({ url: 'not a url' }), { code: 'ERR_PLATFORM_UNREACHABLE' });
});

test('an aborted request rejects promptly', async () => {
  await withServer(() => undefined, async (url) => {
    const ac = new AbortController();
    const p = platformRequest({ url, signal: ac.signal });
    ac.abort();
    await assert.rejects(p, { code: 'ERR_PLATFORM_UNREACHABLE' });
  });
});
