// Error responses never carry internals, on both stores: a server-side failure (a store error
// whose message names SQL, a plain exception with a path and a stack, a closed database) is
// answered with its stable code and a generic message only; client errors keep their message.
// Tokens never appear in any response, error or audit record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError } from '../../../src/store/index.js';
import type { ServerContext } from '../../../src/server/context.js';
import type { ScanPort } from '../../../src/server/ports.js';
import { buildAdminApi } from '../../../src/server/server.js';
import { startTestServer } from '../server-lifecycle/harness.js';

const SECRETISH = 'select token_hash from admin_tokens where x = $1 at /srv/ward/data/ward.db';

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: error responses carry no internals (5xx: code and a generic message) and never reflect large input`, { timeout: 30_000 }, async (t) => {
    const ts = await startTestServer(kind);
    t.after(() => ts.cleanup());
    const auth = { authorization: `Bearer ${ts.bootstrapToken}` };
    const failing = (error: unknown): ServerContext => ({ ...ts.server.context, scans: { parse: () => { throw error; } } as unknown as ScanPort });
    const cases: [unknown, number, string][] = [
      [new StoreError('ERR_STORE_QUERY', `query failed: ${SECRETISH}`, { details: { field: SECRETISH } }), 500, 'ERR_STORE_QUERY'],
      [new StoreError('ERR_STORE_UNAVAILABLE', `database unavailable: ${SECRETISH}`), 503, 'ERR_STORE_UNAVAILABLE'],
      [Object.assign(new Error(SECRETISH), { code: 'ERR_SOMETHING_INTERNAL' }), 500, 'ERR_INTERNAL'],
      [new TypeError(SECRETISH), 500, 'ERR_INTERNAL'],
    ];
    for (const [error, status, code] of cases) {
      const app = buildAdminApi(failing(error));
      const res = await app.inject({ method: 'POST', url: '/v1/scans', headers: { ...auth, 'content-type': 'application/json' }, payload: '{}' });
      await app.close();
      assert.equal(res.statusCode, status, res.body);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['code', 'message']);
      assert.equal(body.code, code);
      assert.ok(!res.body.includes('token_hash') && !res.body.includes('/srv/') && !res.body.includes('    at '), res.body);
    }
    // A client error keeps its explanation.
    const app = buildAdminApi(ts.server.context);
    t.after(() => app.close());
    const bad = await app.inject({ method: 'POST', url: '/v1/apply', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"documents":[]}' });
    assert.equal(bad.statusCode, 400);
    assert.match(JSON.parse(bad.body).message as string, /documents/);

    // Errors quote the input they refuse, but never reflect a large body back.
    const huge = 'k'.repeat(200_000);
    for (const payload of [`{"${huge}":1}`, `{"documents":[{"kind":"RegistrationEntry","apiVersion":"ward.dev/v1alpha1","metadata":{"name":"a"},"spec":{"${huge}":1}}]}`]) {
      const res = await app.inject({ method: 'POST', url: '/v1/apply', headers: { ...auth, 'content-type': 'application/json' }, payload });
      assert.equal(res.statusCode, 400);
      assert.ok(res.body.length < 2048, `a ${res.body.length}-byte error for a ${payload.length}-byte body`);
      assert.equal((JSON.parse(res.body) as { code: string }).code, 'ERR_SERVER_BAD_REQUEST');
    }

    // Tokens: never echoed by any response or stored in the audit log.
    const created = await ts.admin.createAdminToken({ role: 'viewer', name: 'v' });
    const join = await ts.admin.createJoinToken({});
    const flipped = `${created.token.slice(0, 20)}${created.token[20] === 'x' ? 'y' : 'x'}${created.token.slice(21)}`;
    const wrong = await app.inject({ method: 'GET', url: '/v1/agents', headers: { authorization: `Bearer ${flipped}` } });
    assert.equal(wrong.statusCode, 401);
    assert.ok(!wrong.body.includes('ward_adm_'));
    const audit = await app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth });
    for (const secret of [ts.bootstrapToken, created.token, join.token, created.token.slice(-20), join.token.slice(-20)]) assert.ok(!audit.body.includes(secret), 'no token in the audit log');
  });
}
