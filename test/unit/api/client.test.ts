// The typed client against a real local HTTP server: success, the server's error codes, and
// every transport or protocol failure mapped to a stable ERR_API_* code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WardClient } from '../../../src/api/client.js';
import { withServer } from './support.js';
import { ApiError, ServerReplyError } from '../../../src/api/errors.js';

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected a failure');
}

test('sends the bearer token and JSON; returns the typed body', async () => {
  await withServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ auth: req.headers.authorization, method: req.method, url: req.url, body: JSON.parse(body || 'null') }));
    });
  }, async (url) => {
    const c = new WardClient({ baseUrl: url, token: 'ward_adm_x' });
    const got = await c.apply([{ kind: 'AccessPolicy' }], true) as unknown as { auth: string; method: string; url: string; body: unknown };
    assert.deepEqual(got, { auth: 'Bearer ward_adm_x', method: 'POST', url: '/v1/apply', body: { documents: [{ kind: 'AccessPolicy' }], dryRun: true } });
    const w = await c.getWorkload('spiffe://x.org/a b') as unknown as { url: string };
    assert.equal(w.url, '/v1/workloads/spiffe%3A%2F%2Fx.org%2Fa%20b');
    c.close();
  });
});

test('server errors keep their code and status; protocol garbage is ERR_API_BAD_RESPONSE', async () => {
  await withServer((req, res) => {
    if (req.url === '/v1/agents') res.writeHead(403).end(JSON.stringify({ code: 'ERR_SERVER_FORBIDDEN', message: 'no', details: { permission: 'read' } }));
    else if (req.url === '/v1/entries') res.writeHead(200).end('<html>');
    else if (req.url === '/v1/policies') res.writeHead(502).end('{"oops":1}');
    else res.writeHead(200).end(JSON.stringify({ items: ['x'.repeat(5000)] }));
  }, async (url) => {
    const c = new WardClient({ baseUrl: url, maxResponseBytes: 1000 });
    const e1 = await failure(c.listAgents());
    assert.ok(e1 instanceof ServerReplyError);
    assert.deepEqual([e1.status, e1.code, e1.details], [403, 'ERR_SERVER_FORBIDDEN', { permission: 'read' }]);
    for (const p of [c.listEntries(), c.listPolicies(), c.listWorkloads()]) {
      const e = await failure(p);
      assert.ok(e instanceof ApiError && e.code === 'ERR_API_BAD_RESPONSE', String(e));
    }
    c.close();
  });
});

test('unreachable servers and bad URLs have codes too', async () => {
  const c = new WardClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 2000 });
  const e = await failure(c.listAgents());
  assert.ok(e instanceof ApiError && e.code === 'ERR_API_UNREACHABLE');
  c.close();
  assert.throws(() => new WardClient({ baseUrl: 'not a url' }), (x: unknown) => x instanceof ApiError && x.code === 'ERR_API_NO_SERVER');
  assert.throws(() => new WardClient({ baseUrl: 'ftp://h' }), (x: unknown) => x instanceof ApiError && x.code === 'ERR_API_NO_SERVER');
});
