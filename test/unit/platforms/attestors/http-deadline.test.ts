// The platform HTTP client's timeout is a whole-request deadline, not only an idle timeout: a
// platform API (or anything impersonating one) that drips its answer can not hold an attestation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { platformRequest } from '../../../../src/platforms/http.js';

test('a server that drips its body one byte every 50 ms is cut off at timeoutMs', { timeout: 20_000 }, async () => {
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    let sent = 0;
    const drip = setInterval(() => {
      if (sent++ < 60) res.write(' ');
      else {
        clearInterval(drip);
        res.end('{}');
      }
    }, 50);
    timers.add(drip);
    res.on('close', () => clearInterval(drip));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Every gap (50 ms) is far below the idle timeout; the whole answer (~3 s) is far above the deadline.
    await assert.rejects(platformRequest({ url, timeoutMs: 400 }), { code: 'ERR_PLATFORM_UNREACHABLE' });
  } finally {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a fast answer under a deadline still succeeds, and a streaming request (timeoutMs 0) is not cut', async () => {
  const server = createServer((_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await platformRequest({ url, timeoutMs: 5000 })).body.toString(), '{"ok":true}');
    assert.equal((await platformRequest({ url, timeoutMs: 0 })).body.toString(), '{"ok":true}');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
