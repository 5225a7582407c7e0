// Every route of both listeners, enumerated from the fastify instances the server builds, with the
// permission it needs. A route added without an entry in ROUTE_TABLE fails this test; every
// (route, caller) pair is checked: no credential and a forged token get 401, a role without the
// permission gets 403, a role with it gets past authorization (whatever the handler then says).
// The audit log has no route that could change it. Runs on both stores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { can, ROLES, type Permission } from '../../../src/server/auth/roles.js';
import { buildAdminApi, buildAgentApi } from '../../../src/server/server.js';
import { startTestServer } from '../server-lifecycle/harness.js';

type Need = Permission | 'public' | 'agent' | 'attest';

/** The required permission of every route; `agent` = the agent SVID over mutual TLS. */
const ADMIN_ROUTES: Readonly<Record<string, Need>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /openapi.json': 'public',
  'GET /v1/workloads': 'read',
  'GET /v1/workloads/:id': 'read',
  'GET /v1/entries': 'read',
  'GET /v1/policies': 'read',
  'GET /v1/agents': 'read',
  'GET /v1/audit': 'audit.read',
  'POST /v1/apply': 'write',
  'DELETE /v1/policies/:name': 'write',
  'DELETE /v1/entries/:id': 'write',
  'POST /v1/agents/:id/revoke': 'write',
  'POST /v1/tokens/join': 'join-token.create',
  'POST /v1/tokens/admin': 'admin-token.create',
  'POST /v1/scans': 'write',
  'POST /v1/provenance': 'write',
};
const AGENT_ROUTES: Readonly<Record<string, Need>> = {
  'GET /healthz': 'public',
  'GET /openapi.json': 'public',
  'POST /v1/agent/attest': 'attest',
  'POST /v1/agent/renew': 'agent',
  'POST /v1/agent/svids': 'agent',
  'POST /v1/agent/events': 'agent',
  'GET /v1/agent/watch': 'agent',
};

/** Builds the instance with an onRoute hook installed first, so every route is seen. */
async function enumerate(build: (hook: (r: RouteOptions) => void) => FastifyInstance): Promise<{ app: FastifyInstance; routes: string[] }> {
  const routes: string[] = [];
  const app = build((r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) if (m !== 'HEAD') routes.push(`${m} ${r.url}`);
  });
  await app.ready();
  return { app, routes: [...new Set(routes)].sort() };
}

function concrete(route: string): { method: string; url: string } {
  const [method, path] = route.split(' ') as [string, string];
  return { method, url: path.replace(/:[a-z]+/g, 'spiffe%3A%2F%2Fward.test%2Fnope') };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: every admin and agent route requires its role; a route without a table entry fails`, { timeout: 60_000 }, async (t) => {
    // Every refusal here comes from one address: the refusal rate limit (ADR 0077, tested in
    // refusal-rate-limit.test.ts) is raised so each route answers with its own refusal.
    const ts = await startTestServer(kind, { refusalRateLimit: { burst: 10_000, globalBurst: 10_000 } });
    t.after(() => ts.cleanup());
    const ctx = ts.server.context;
    const hooked = (fn: typeof buildAdminApi) => (onRoute: (r: RouteOptions) => void): FastifyInstance => fn(ctx, { onRoute });
    const admin = await enumerate(hooked(buildAdminApi));
    const agent = await enumerate(hooked(buildAgentApi));
    t.after(async () => {
      await admin.app.close();
      await agent.app.close();
    });
    assert.deepEqual(admin.routes, Object.keys(ADMIN_ROUTES).sort(), 'admin routes and the role table differ: give the new route a role here');
    assert.deepEqual(agent.routes, Object.keys(AGENT_ROUTES).sort(), 'agent routes and the role table differ: give the new route a role here');
    // Nothing but GET touches the audit log.
    assert.deepEqual(admin.routes.filter((r) => r.includes('/audit')), ['GET /v1/audit']);

    const tokens: Record<string, string> = {};
    for (const role of ROLES) tokens[role] = (await ts.admin.createAdminToken({ role, name: `t-${role}` })).token;
    const callers: Record<string, string | undefined> = { ...tokens, none: undefined, forged: `ward_adm_${'A'.repeat(43)}`, malformed: 'Bearer x' };

    const failures: string[] = [];
    for (const [route, need] of Object.entries(ADMIN_ROUTES)) {
      const { method, url } = concrete(route);
      for (const [caller, token] of Object.entries(callers)) {
        const headers: Record<string, string> = {};
        if (token !== undefined) headers.authorization = caller === 'malformed' ? token : `Bearer ${token}`;
        const res = await admin.app.inject({ method: method as 'GET', url, headers, ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }) });
        const isRole = (ROLES as readonly string[]).includes(caller);
        const expected = need === 'public' ? 'allowed' : !isRole ? 401 : can(caller, need as Permission) ? 'allowed' : 403;
        const ok = expected === 'allowed' ? res.statusCode !== 401 && res.statusCode !== 403 : res.statusCode === expected;
        if (!ok) failures.push(`${route} as ${caller}: ${res.statusCode} (expected ${String(expected)}) ${res.body.slice(0, 200)}`);
        if (res.statusCode >= 400) {
          const body = JSON.parse(res.body) as { code?: unknown; message?: unknown };
          if (typeof body.code !== 'string' || typeof body.message !== 'string') failures.push(`${route} as ${caller}: error without {code, message}`);
        }
      }
    }
    // The agent API without a client certificate: only the public routes and attest answer.
    for (const [route, need] of Object.entries(AGENT_ROUTES)) {
      const { method, url } = concrete(route);
      for (const token of [undefined, tokens.admin]) {
        const res = await agent.app.inject({ method: method as 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, ...(method === 'GET' ? {} : { payload: {} }) });
        const ok = need === 'agent' ? res.statusCode === 401 : res.statusCode !== 401 && res.statusCode !== 403;
        if (!ok) failures.push(`agent ${route} (${token === undefined ? 'none' : 'admin token'}): ${res.statusCode}`);
      }
    }
    assert.deepEqual(failures, []);
  });
}
