/**
 * The OpenAPI 3.1 document of the admin and agent APIs, served at `/openapi.json`. Written by
 * hand next to the routes; `test/unit/server/openapi.test.ts` checks that every registered route
 * is described and every described path is registered.
 */
const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const list = (item: string): object => ({ type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref(item) } } });
const json = (schema: object): object => ({ content: { 'application/json': { schema } } });
const ok = (schema: object, description = 'OK'): object => ({ description, ...json(schema) });
const errors = (...codes: number[]): Record<string, object> =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'Error with a stable code (see docs/reference/errors.md)', ...json(ref('Error')) }]));
const attributeSet = { type: 'object', additionalProperties: ref('Attribute') };

export const OPENAPI_DOCUMENT = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'Ward server API',
    version: '1',
    description: 'Admin API (bearer token or admin client certificate) and agent API (mutual TLS with the agent SVID). Errors are `{code, message}` with stable codes.',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: '`ward_adm_<id>.<secret>` admin token' },
      agentSvid: { type: 'mutualTLS', description: "The agent's X.509-SVID" },
    },
    schemas: {
      Error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', pattern: '^ERR_[A-Z0-9_]+$' }, message: { type: 'string' }, details: { type: 'object' } } },
      Attribute: { type: 'object', required: ['value', 'source', 'observedAt'], properties: { value: {}, source: { type: 'string' }, observedAt: { type: 'integer', description: 'ms since epoch' } } },
      Entry: {
        type: 'object', required: ['id', 'spiffeId', 'parentId', 'nodeSelectors', 'selectors', 'resourceVersion'],
        properties: { id: { type: 'string' }, spiffeId: { type: 'string' }, parentId: { type: 'string' }, nodeSelectors: { type: 'array', items: { type: 'string' } }, selectors: { type: 'array', items: { type: 'string' } }, ttlSeconds: { type: 'integer' }, dnsNames: { type: 'array', items: { type: 'string' } }, resourceVersion: { type: 'integer' } },
      },
      Workload: { type: 'object', required: ['spiffeId', 'attributes', 'resourceVersion'], properties: { spiffeId: { type: 'string' }, entryId: { type: 'string' }, agentId: { type: 'string' }, attributes: attributeSet, resourceVersion: { type: 'integer' } } },
      Agent: {
        type: 'object', required: ['agentId', 'attestor', 'selectors', 'attributes', 'serialNumber', 'expiresAt', 'revoked', 'lastSeenAt'],
        properties: { agentId: { type: 'string' }, attestor: { type: 'string' }, selectors: { type: 'array', items: { type: 'string' } }, attributes: attributeSet, serialNumber: { type: 'string' }, expiresAt: { type: 'integer' }, revoked: { type: 'boolean' }, lastSeenAt: { type: 'integer' } },
      },
      Policy: { type: 'object', required: ['kind', 'name', 'document', 'resourceVersion'], properties: { kind: { type: 'string' }, name: { type: 'string' }, document: { type: 'object' }, resourceVersion: { type: 'integer' } } },
      AuditRecord: {
        type: 'object', required: ['id', 'at', 'actor', 'action', 'resource', 'outcome'],
        properties: { id: { type: 'integer' }, at: { type: 'integer' }, actor: { type: 'string' }, action: { type: 'string' }, resource: { type: 'string' }, outcome: { enum: ['ok', 'denied', 'error'] }, code: { type: 'string' }, before: {}, after: {} },
      },
      Svid: { type: 'object', required: ['spiffeId', 'certChain', 'expiresAt'], properties: { spiffeId: { type: 'string' }, certChain: { type: 'array', items: { type: 'string' }, description: 'PEM, leaf first' }, expiresAt: { type: 'integer' } } },
      WatchMessage: {
        type: 'object', required: ['type', 'resourceVersion'],
        description: 'One SSE message; the SSE `id` is `resourceVersion`, the SSE `event` is `type`. Each message carries the whole state of its type.',
        properties: { type: { enum: ['bundle', 'entries', 'policies', 'attributes', 'revocations'] }, resourceVersion: { type: 'integer' } },
      },
    },
  },
  paths: {
    '/healthz': { get: { summary: 'Liveness', responses: { 200: ok({ type: 'object' }) } } },
    '/readyz': { get: { summary: 'Readiness (store reachable)', responses: { 200: ok({ type: 'object' }), ...errors(503) } } },
    '/openapi.json': { get: { summary: 'This document', responses: { 200: ok({ type: 'object' }) } } },
    '/v1/workloads': { get: { summary: 'List workloads with their attributes', security: [{ bearer: [] }], responses: { 200: ok(list('Workload')), ...errors(401, 403) } } },
    '/v1/workloads/{id}': {
      get: {
        summary: 'One workload by SPIFFE ID (URL-encoded)', security: [{ bearer: [] }],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: ok(ref('Workload')), ...errors(401, 403, 404) },
      },
    },
    '/v1/entries': { get: { summary: 'List registration entries', security: [{ bearer: [] }], responses: { 200: ok(list('Entry')), ...errors(401, 403) } } },
    '/v1/entries/{id}': { delete: { summary: 'Delete a registration entry', security: [{ bearer: [] }], parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: ok({ type: 'object' }), ...errors(401, 403, 404) } } },
    '/v1/policies': { get: { summary: 'List policies', security: [{ bearer: [] }], responses: { 200: ok(list('Policy')), ...errors(401, 403) } } },
    '/v1/policies/{name}': { delete: { summary: 'Delete a policy', security: [{ bearer: [] }], parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: ok({ type: 'object' }), ...errors(401, 403, 404) } } },
    '/v1/apply': {
      post: {
        summary: 'Create or update policies and registration entries (all or nothing)', security: [{ bearer: [] }],
        requestBody: { required: true, ...json({ type: 'object', required: ['documents'], properties: { documents: { type: 'array', items: { type: 'object' }, minItems: 1, maxItems: 1000 }, dryRun: { type: 'boolean' } } }) },
        responses: { 200: ok({ type: 'object', properties: { dryRun: { type: 'boolean' }, results: { type: 'array', items: { type: 'object', properties: { kind: { type: 'string' }, name: { type: 'string' }, action: { enum: ['created', 'configured', 'unchanged'] }, resourceVersion: { type: 'integer' } } } } } }), ...errors(400, 401, 403, 409, 413, 415) },
      },
    },
    '/v1/agents': { get: { summary: 'List attested agents', security: [{ bearer: [] }], responses: { 200: ok(list('Agent')), ...errors(401, 403) } } },
    '/v1/agents/{id}/revoke': { post: { summary: "Revoke an agent: its SVID serial is pushed to every agent's revocation list", security: [{ bearer: [] }], parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: ok(ref('Agent')), ...errors(401, 403, 404) } } },
    '/v1/audit': {
      get: {
        summary: 'Read the append-only audit log', security: [{ bearer: [] }],
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } }, { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0 } }],
        responses: { 200: ok(list('AuditRecord')), ...errors(400, 401, 403) },
      },
    },
    '/v1/tokens/join': {
      post: {
        summary: 'Create a single-use join token (shown once)', security: [{ bearer: [] }],
        requestBody: json({ type: 'object', properties: { ttlSeconds: { type: 'integer', minimum: 1 }, attributes: { type: 'object', additionalProperties: { type: 'string' } } } }),
        responses: { 200: ok({ type: 'object', required: ['token', 'expiresAt'], properties: { token: { type: 'string' }, expiresAt: { type: 'integer' } } }), ...errors(400, 401, 403) },
      },
    },
    '/v1/tokens/admin': {
      post: {
        summary: 'Create an admin API token with a role (shown once; stored hashed)', security: [{ bearer: [] }],
        requestBody: { required: true, ...json({ type: 'object', required: ['role', 'name'], properties: { role: { enum: ['admin', 'operator', 'viewer', 'auditor'] }, name: { type: 'string' }, ttlSeconds: { type: 'integer' } } }) },
        responses: { 200: ok({ type: 'object', properties: { id: { type: 'string' }, token: { type: 'string' }, role: { type: 'string' }, expiresAt: { type: 'integer' } } }), ...errors(400, 401, 403) },
      },
    },
    '/v1/scans': {
      post: {
        summary: 'Import a scanner report (Trivy JSON, Grype JSON, CycloneDX VEX); updates vuln.* of every workload of the image', security: [{ bearer: [] }],
        requestBody: { required: true, ...json({ type: 'object' }) },
        responses: { 200: ok({ type: 'object', properties: { format: { type: 'string' }, imageDigests: { type: 'array', items: { type: 'string' } }, workloadsUpdated: { type: 'array', items: { type: 'string' } } } }), ...errors(400, 401, 403, 413) },
      },
    },
    '/v1/provenance': {
      post: {
        summary: 'Import SLSA provenance (in-toto Statement in a DSSE envelope), verified against the configured keys; sets build.* on every workload of the subject digests', security: [{ bearer: [] }],
        requestBody: { required: true, ...json({ type: 'object', required: ['payloadType', 'payload', 'signatures'] }) },
        responses: { 200: ok({ type: 'object', properties: { imageDigests: { type: 'array', items: { type: 'string' } }, verified: { type: 'boolean' }, workloadsUpdated: { type: 'array', items: { type: 'string' } } } }), ...errors(400, 401, 403, 413) },
      },
    },
    '/v1/agent/attest': {
      post: {
        summary: 'Node attestation: evidence + CSR naming the agent ID → agent SVID + bundle (server-authenticated TLS)',
        requestBody: { required: true, ...json({ type: 'object', required: ['attestor', 'evidence', 'csr'], properties: { attestor: { type: 'string' }, evidence: {}, csr: { type: 'string' } } }) },
        responses: { 200: ok({ type: 'object', properties: { agentId: { type: 'string' }, svid: ref('Svid'), bundle: { type: 'array', items: { type: 'string' } } } }), ...errors(400, 401, 403) },
      },
    },
    '/v1/agent/renew': { post: { summary: "Renew the agent's own SVID", security: [{ agentSvid: [] }], requestBody: { required: true, ...json({ type: 'object', required: ['csr'], properties: { csr: { type: 'string' } } }) }, responses: { 200: ok(ref('Svid')), ...errors(400, 401) } } },
    '/v1/agent/svids': { post: { summary: 'Issue or renew a workload SVID for an entry this agent may mint', security: [{ agentSvid: [] }], requestBody: { required: true, ...json({ type: 'object', required: ['spiffeId', 'csr'], properties: { spiffeId: { type: 'string' }, csr: { type: 'string' } } }) }, responses: { 200: ok(ref('Svid')), ...errors(400, 401, 403) } } },
    '/v1/agent/watch': {
      get: {
        summary: 'Server-sent events: bundle, entries, policies, peer attributes, revocations; resume with Last-Event-ID', security: [{ agentSvid: [] }],
        parameters: [{ name: 'Last-Event-ID', in: 'header', schema: { type: 'string', pattern: '^\\d+$' } }, { name: 'since', in: 'query', schema: { type: 'string', pattern: '^\\d+$' } }],
        responses: { 200: { description: 'text/event-stream of WatchMessage', content: { 'text/event-stream': { schema: ref('WatchMessage') } } }, ...errors(400, 401, 429) },
      },
    },
    '/v1/agent/events': {
      post: {
        summary: 'Ingest an event batch; (agent, seq) pairs already stored are skipped', security: [{ agentSvid: [] }],
        requestBody: { required: true, ...json({ type: 'object', required: ['agentId', 'batch'], properties: { agentId: { type: 'string' }, batch: { type: 'array', items: { type: 'object', required: ['seq', 'event'] } } } }) },
        responses: { 200: ok({ type: 'object', properties: { accepted: { type: 'integer' }, duplicates: { type: 'integer' }, ackedSequence: { type: 'integer' } } }), ...errors(400, 401, 403, 413) },
      },
    },
  },
});
