// The OpenAPI document and the routes agree: every registered route is described, every
// described operation is registered, and every error response points at the Error schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { parseServerConfig } from '../../../src/server/config.js';
import { createApp } from '../../../src/server/app.js';
import type { ServerContext } from '../../../src/server/context.js';
import { OPENAPI_DOCUMENT } from '../../../src/server/openapi.js';
import { registerAdminRoutes } from '../../../src/server/routes/admin.js';
import { registerAgentRoutes } from '../../../src/server/routes/agent.js';
import { ROUTE_ACTIONS } from '../../../src/server/routes/actions.js';

function routesOf(register: (app: FastifyInstance, ctx: ServerContext) => void): Set<string> {
  const ctx = { config: parseServerConfig({ dataDir: '/tmp/unused' }) } as unknown as ServerContext;
  const app = createApp(ctx);
  const seen = new Set<string>();
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') seen.add(`${m} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
  });
  app.get('/openapi.json', async () => OPENAPI_DOCUMENT);
  register(app, ctx);
  return seen;
}

test('every route is in /openapi.json and every documented operation is served', () => {
  const served = new Set([...routesOf(registerAdminRoutes), ...routesOf(registerAgentRoutes)]);
  const documented = new Set<string>();
  for (const [path, ops] of Object.entries(OPENAPI_DOCUMENT.paths)) {
    for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
  }
  assert.deepEqual([...served].sort(), [...documented].sort());
});

test('error responses use the {code, message} schema; mutating routes have an audit action', () => {
  for (const [path, ops] of Object.entries(OPENAPI_DOCUMENT.paths)) {
    for (const [method, op] of Object.entries(ops as Record<string, { responses: Record<string, unknown> }>)) {
      for (const [status, res] of Object.entries(op.responses)) {
        if (Number(status) >= 400) assert.match(JSON.stringify(res), /#\/components\/schemas\/Error/, `${method} ${path} ${status}`);
      }
      if (method !== 'get' || path === '/v1/agent/watch') {
        const key = `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
        assert.ok(ROUTE_ACTIONS[key] !== undefined, `audit action for ${key}`);
      }
    }
  }
});
