/**
 * The admin REST API under `/v1/`: reads for every role, changes for operators and admins,
 * the audit log for auditors and admins, admin tokens for admins. Every change commits in one
 * store transaction together with its audit record (who, what, when, before/after); refusals
 * are audited by the error handler. Reads are served from the registry view.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { stringify as toYaml } from 'yaml';
import type { AdminTokenResponse, ApplyResponse, ApplyResult, Entry, JoinTokenResponse, ProvenanceImportResponse, ScanImportResponse } from '../../api/types.js';
import { issueJoinToken } from '../../platforms/join-token/token.js';
import { ServerError } from '../errors.js';
import { afterChange, type ServerContext } from '../context.js';
import { authenticateAdmin, type Principal } from '../auth/authenticate.js';
import { can, isRole, type Permission } from '../auth/roles.js';
import { newAdminToken } from '../auth/tokens.js';
import { auditToWire } from '../services/audit.js';
import { ENTRY_KIND, entryToStore, parseEntryDocument } from '../services/entries.js';
import type { ValidatedPolicy } from '../ports.js';

async function guard(ctx: ServerContext, request: FastifyRequest, permission: Permission, audit?: { action: string; resource: string }): Promise<Principal> {
  if (audit !== undefined) request.wardAudit = audit;
  const principal = await authenticateAdmin(ctx, request);
  request.wardActor = principal.actor;
  if (!can(principal.role, permission)) {
    throw new ServerError('ERR_SERVER_FORBIDDEN', `role ${principal.role} may not ${permission}`, { details: { permission } });
  }
  return principal;
}

function objectBody(body: unknown, path = ''): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ServerError('ERR_SERVER_BAD_REQUEST', `${path === '' ? 'body' : path}: expected a JSON object`, { details: { path } });
  }
  return body as Record<string, unknown>;
}

function allowKeys(body: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(body)) if (!keys.includes(k)) throw new ServerError('ERR_SERVER_BAD_REQUEST', `unknown field ${k}`, { details: { path: k } });
}

function optionalSeconds(value: unknown, path: string, maxSeconds: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > maxSeconds) {
    throw new ServerError('ERR_SERVER_BAD_REQUEST', `${path}: expected an integer number of seconds in [1, ${maxSeconds}]`, { details: { path } });
  }
  return value;
}

type Planned =
  | { readonly kind: 'entry'; readonly entry: Omit<Entry, 'revision'>; readonly prev: Entry | undefined }
  | { readonly kind: 'policy'; readonly policy: ValidatedPolicy; readonly prev: unknown };

export function registerAdminRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async () => {
    await ctx.store.ping();
    return { ok: true, version: ctx.view.version };
  });

  app.get('/v1/workloads', async (request) => {
    await guard(ctx, request, 'read');
    return { items: ctx.view.workloads() };
  });
  app.get<{ Params: { id: string } }>('/v1/workloads/:id', async (request) => {
    await guard(ctx, request, 'read');
    const w = ctx.view.workload(request.params.id);
    if (w === undefined) throw new ServerError('ERR_SERVER_NOT_FOUND', `no workload ${request.params.id.slice(0, 256)}`);
    return w;
  });
  app.get('/v1/entries', async (request) => {
    await guard(ctx, request, 'read');
    return { items: ctx.view.entries() };
  });
  app.get('/v1/policies', async (request) => {
    await guard(ctx, request, 'read');
    return { items: ctx.view.policies() };
  });
  app.get('/v1/agents', async (request) => {
    await guard(ctx, request, 'read');
    return { items: ctx.view.agents() };
  });
  app.get<{ Querystring: { limit?: string; after?: string } }>('/v1/audit', async (request) => {
    await guard(ctx, request, 'audit.read');
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    const after = request.query.after === undefined ? undefined : Number(request.query.after);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new ServerError('ERR_SERVER_BAD_REQUEST', 'limit must be in [1, 1000]', { details: { path: 'limit' } });
    if (after !== undefined && (!Number.isSafeInteger(after) || after < 0)) throw new ServerError('ERR_SERVER_BAD_REQUEST', 'after must be a non-negative integer', { details: { path: 'after' } });
    const items = await ctx.store.audit.list({ limit, ...(after === undefined ? {} : { afterId: after }) });
    return { items: items.map(auditToWire) };
  });

  app.post('/v1/apply', async (request): Promise<ApplyResponse> => {
    const audit = { action: 'apply', resource: '' };
    const principal = await guard(ctx, request, 'write', audit);
    const body = objectBody(request.body);
    allowKeys(body, ['documents', 'dryRun']);
    const docs = body.documents;
    if (!Array.isArray(docs) || docs.length === 0 || docs.length > 1000) throw new ServerError('ERR_SERVER_BAD_REQUEST', 'documents: expected 1 to 1000 documents', { details: { path: 'documents' } });
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new ServerError('ERR_SERVER_BAD_REQUEST', 'dryRun: expected a boolean', { details: { path: 'dryRun' } });
    const dryRun = body.dryRun === true;
    // Validate every document first: one bad document stores nothing.
    const planned: Planned[] = [];
    const results: ApplyResult[] = [];
    const seen = new Set<string>();
    for (const [i, doc] of docs.entries()) {
      const kind = (doc as { kind?: unknown } | null)?.kind;
      let key: string;
      if (kind === ENTRY_KIND) {
        const entry = parseEntryDocument(doc, ctx.config.trustDomain, ctx.nodeAttestors, Math.round(ctx.config.svidTtlMs / 1000), `documents[${i}]`);
        // An admin identity is a credential for this API: registering it would let an operator
        // (and any agent the entry selects) mint an admin client certificate.
        if (ctx.config.adminSpiffeIds.includes(entry.spiffeId)) {
          throw new ServerError('ERR_SERVER_BAD_REQUEST', `documents[${i}].spec.spiffeId: an admin identity (adminSpiffeIds) cannot be registered for workloads`, { details: { path: `documents[${i}].spec.spiffeId` } });
        }
        key = `${ENTRY_KIND}/${entry.id}`;
        const prev = ctx.view.entry(entry.id);
        const same = prev !== undefined && JSON.stringify({ ...prev, revision: 0 }) === JSON.stringify({ ...entry, revision: 0 });
        results.push({ kind: ENTRY_KIND, name: entry.id, action: prev === undefined ? 'created' : same ? 'unchanged' : 'configured' });
        if (!same) planned.push({ kind: 'entry', entry, prev });
      } else {
        let policy: ValidatedPolicy;
        try {
          policy = ctx.policies.validate(doc);
        } catch (error) {
          const e = error as { code?: unknown; message?: unknown; details?: Record<string, unknown> };
          if (typeof e.code === 'string' && e.code.startsWith('ERR_')) {
            throw new ServerError(e.code as never, `documents[${i}]: ${String(e.message)}`, { details: { ...(e.details ?? {}), document: i }, cause: error });
          }
          throw error;
        }
        key = `policy/${policy.name}`;
        const prev = ctx.view.policy(policy.name);
        if (prev !== undefined && prev.kind !== policy.kind) {
          throw new ServerError('ERR_SERVER_CONFLICT', `documents[${i}]: policy ${policy.name} exists with kind ${prev.kind}`, { details: { path: `documents[${i}].metadata.name` } });
        }
        const same = prev !== undefined && JSON.stringify(prev.document) === JSON.stringify(policy.document);
        results.push({ kind: policy.kind, name: policy.name, action: prev === undefined ? 'created' : same ? 'unchanged' : 'configured' });
        if (!same) planned.push({ kind: 'policy', policy, prev: prev?.document });
      }
      if (seen.has(key)) throw new ServerError('ERR_SERVER_CONFLICT', `documents[${i}]: ${key} appears twice`, { details: { path: `documents[${i}]` } });
      seen.add(key);
    }
    audit.resource = results.map((r) => `${r.kind}/${r.name}`).join(',').slice(0, 1000);
    if (dryRun || planned.length === 0) return { dryRun, results };
    await ctx.store.transaction(async (tx) => {
      for (const p of planned) {
        if (p.kind === 'entry') {
          const input = entryToStore(p.entry, ctx.config.trustDomain);
          if (p.prev === undefined) await tx.entries.create(input);
          else await tx.entries.update(p.entry.id, input, p.prev.revision);
          await tx.audit.append({ actor: principal.actor, action: p.prev === undefined ? 'entry.create' : 'entry.update', resource: `entry/${p.entry.id}`, before: p.prev ?? null, after: p.entry });
        } else {
          await tx.policies.put({ name: p.policy.name, yaml: toYaml(p.policy.document), parsed: { kind: p.policy.kind, document: p.policy.document, policy: p.policy.policy } });
          await tx.audit.append({ actor: principal.actor, action: 'policy.apply', resource: `policy/${p.policy.name}`, before: p.prev ?? null, after: p.policy.document });
        }
      }
    });
    await afterChange(ctx);
    return { dryRun, results };
  });

  app.delete<{ Params: { name: string } }>('/v1/policies/:name', async (request) => {
    const name = request.params.name;
    const principal = await guard(ctx, request, 'write', { action: 'policy.delete', resource: `policy/${name}` });
    if (ctx.view.policy(name) === undefined) throw new ServerError('ERR_SERVER_NOT_FOUND', `no policy ${name.slice(0, 256)}`);
    await ctx.store.transaction(async (tx) => {
      const prev = await tx.policies.delete(name);
      await tx.audit.append({ actor: principal.actor, action: 'policy.delete', resource: `policy/${name}`, before: (prev.parsed as { document?: unknown } | null)?.document ?? null });
    });
    await afterChange(ctx);
    return { deleted: name };
  });

  app.delete<{ Params: { id: string } }>('/v1/entries/:id', async (request) => {
    const id = request.params.id;
    const principal = await guard(ctx, request, 'write', { action: 'entry.delete', resource: `entry/${id}` });
    const prev = ctx.view.entry(id);
    if (prev === undefined) throw new ServerError('ERR_SERVER_NOT_FOUND', `no entry ${id.slice(0, 256)}`);
    await ctx.store.transaction(async (tx) => {
      await tx.entries.delete(id);
      await tx.audit.append({ actor: principal.actor, action: 'entry.delete', resource: `entry/${id}`, before: prev });
    });
    await afterChange(ctx);
    return { deleted: id };
  });

  app.post<{ Params: { id: string } }>('/v1/agents/:id/revoke', async (request) => {
    const id = request.params.id;
    const principal = await guard(ctx, request, 'write', { action: 'agent.revoke', resource: `agent/${id}` });
    const prev = ctx.view.agent(id);
    if (prev === undefined) throw new ServerError('ERR_SERVER_NOT_FOUND', `no agent ${id.slice(0, 256)}`);
    await ctx.store.transaction(async (tx) => {
      const serials = await tx.agents.revoke(id, `revoked by ${principal.actor}`);
      await tx.audit.append({ actor: principal.actor, action: 'agent.revoke', resource: `agent/${id}`, before: { revoked: prev.revoked }, after: { revoked: true, serials } });
    });
    await afterChange(ctx);
    return ctx.view.agent(id);
  });

  app.post('/v1/tokens/join', async (request): Promise<JoinTokenResponse> => {
    const audit = { action: 'join-token.create', resource: '' };
    const principal = await guard(ctx, request, 'join-token.create', audit);
    const body = request.body === undefined ? {} : objectBody(request.body);
    allowKeys(body, ['ttlSeconds', 'attributes']);
    const ttl = optionalSeconds(body.ttlSeconds, 'ttlSeconds', 7 * 86_400);
    const attributes: Record<string, string> = {};
    if (body.attributes !== undefined) {
      for (const [k, v] of Object.entries(objectBody(body.attributes, 'attributes'))) {
        if (typeof v !== 'string') throw new ServerError('ERR_SERVER_BAD_REQUEST', `attributes.${k}: expected a string`, { details: { path: `attributes.${k}` } });
        attributes[k] = v;
      }
    }
    const issued = await issueJoinToken({ clock: ctx.clock, state: ctx.attestation, ttlMs: ttl === undefined ? ctx.config.joinTokenTtlMs : ttl * 1000, attributes });
    audit.resource = `join-token/${issued.id}`;
    await ctx.store.audit.append({ actor: principal.actor, action: 'join-token.create', resource: audit.resource, after: { id: issued.id, expiresAt: issued.expiresAt, attributes } });
    return { token: issued.token, expiresAt: issued.expiresAt };
  });

  app.post('/v1/tokens/admin', async (request): Promise<AdminTokenResponse> => {
    const audit = { action: 'admin-token.create', resource: '' };
    const principal = await guard(ctx, request, 'admin-token.create', audit);
    const body = objectBody(request.body);
    allowKeys(body, ['role', 'name', 'ttlSeconds']);
    if (!isRole(body.role)) throw new ServerError('ERR_SERVER_BAD_REQUEST', 'role: one of admin, operator, viewer, auditor', { details: { path: 'role' } });
    if (typeof body.name !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(body.name)) throw new ServerError('ERR_SERVER_BAD_REQUEST', 'name: 1-64 of [A-Za-z0-9._@-]', { details: { path: 'name' } });
    audit.resource = `admin-token/${body.name}`;
    const ttl = optionalSeconds(body.ttlSeconds, 'ttlSeconds', 366 * 86_400);
    const token = newAdminToken();
    const expiresAt = ctx.clock.now() + (ttl === undefined ? ctx.config.adminTokenTtlMs : ttl * 1000);
    const role = body.role;
    const name = body.name;
    await ctx.store.transaction(async (tx) => {
      await tx.adminTokens.create({ token, name, role, expiresAt });
      await tx.audit.append({ actor: principal.actor, action: 'admin-token.create', resource: audit.resource, after: { name, role, expiresAt } });
    });
    return { id: name, token, role, expiresAt };
  });

  app.post<{ Querystring: { imageDigest?: string } }>('/v1/scans', { bodyLimit: ctx.config.scanBodyLimitBytes }, async (request): Promise<ScanImportResponse> => {
    const audit = { action: 'scan.import', resource: '' };
    const principal = await guard(ctx, request, 'write', audit);
    const imageDigest = request.query.imageDigest;
    if (imageDigest !== undefined && (typeof imageDigest !== 'string' || imageDigest.length > 200)) throw new ServerError('ERR_SERVER_BAD_REQUEST', 'imageDigest: expected sha256:<hex>', { details: { path: 'imageDigest' } });
    const parsed = ctx.scans.parse(JSON.stringify(request.body ?? null), { observedAt: ctx.clock.now(), ...(imageDigest === undefined ? {} : { imageDigest }) });
    const digests = [...parsed.images.keys()].sort();
    audit.resource = `scan/${parsed.scanner}/${digests.join(',')}`.slice(0, 1000);
    await ctx.store.transaction(async (tx) => {
      for (const digest of digests) {
        const before = await tx.images.scans(digest);
        const attributes = parsed.images.get(digest) ?? {};
        await tx.images.putScan({ imageDigest: digest, scanner: parsed.scanner, attributes, summary: parsed.summary });
        await tx.audit.append({ actor: principal.actor, action: 'scan.import', resource: `image/${digest}`, before: before.find((s) => s.scanner === parsed.scanner)?.attributes ?? null, after: attributes });
      }
    });
    await afterChange(ctx);
    const updated = ctx.view.workloads().filter((w) => w.imageDigest !== null && parsed.images.has(w.imageDigest)).map((w) => w.spiffeId);
    return { format: parsed.scanner, imageDigests: digests, workloadsUpdated: updated };
  });

  app.post('/v1/provenance', { bodyLimit: ctx.config.scanBodyLimitBytes }, async (request): Promise<ProvenanceImportResponse> => {
    const audit = { action: 'provenance.import', resource: '' };
    const principal = await guard(ctx, request, 'write', audit);
    const result = ctx.provenance.verify(objectBody(request.body), ctx.clock.now());
    audit.resource = `provenance/${result.digests.join(',')}`.slice(0, 1000);
    await ctx.store.transaction(async (tx) => {
      for (const digest of result.digests) {
        const before = await tx.images.provenance(digest);
        await tx.images.putProvenance({ imageDigest: digest, attributes: result.attributes, statement: result.statement, verified: result.verified });
        await tx.audit.append({ actor: principal.actor, action: 'provenance.import', resource: `image/${digest}`, before: before?.attributes ?? null, after: result.attributes });
      }
    });
    await afterChange(ctx);
    const digests = new Set(result.digests);
    const updated = ctx.view.workloads().filter((w) => w.imageDigest !== null && digests.has(w.imageDigest)).map((w) => w.spiffeId);
    return { imageDigests: [...result.digests], verified: result.verified, workloadsUpdated: updated };
  });
}
