/**
 * The agent API (mutual TLS listener): attest, renew the agent SVID, issue workload SVIDs,
 * the watch stream, event ingest. Only `attest` accepts a caller without a client certificate;
 * every other route requires the current SVID of a known, unrevoked agent.
 */
import type { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AgentInfo, AttestResponse, EventIngestResponse, SvidResponse } from '../../api/types.js';
import { encodeSse, encodeSseComment } from '../../api/sse.js';
import { decodeBatchValue } from '../../events/codec.js';
import type { AttributeSet } from '../../identity/attributes.js';
import { IMAGE_DIGEST_RE } from '../../store/index.js';
import { PlatformError } from '../../platforms/errors.js';
import { ServerError } from '../errors.js';
import { afterChange, type ServerContext } from '../context.js';
import { authenticateAgent } from '../auth/authenticate.js';
import { newCursor, partJson, type WatchSubscriber } from '../services/watch-hub.js';

const MAX_CSR_CHARS = 8192;

function field<T>(body: unknown, key: string, check: (v: unknown) => v is T, what: string): T {
  const v = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[key] : undefined;
  if (!check(v)) throw new ServerError('ERR_SERVER_BAD_REQUEST', `${key}: expected ${what}`, { details: { path: key } });
  return v;
}
const isCsr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_CSR_CHARS;
const isName = (v: unknown): v is string => typeof v === 'string' && /^[a-z][a-z0-9_]{0,31}$/.test(v);
const isSpiffeText = (v: unknown): v is string => typeof v === 'string' && v.startsWith('spiffe://') && v.length <= 2048;

/** Keeps only attributes asserted by `source` (the store replaces attributes per source). */
function reSource(set: AttributeSet, source: string): AttributeSet {
  return Object.fromEntries(Object.entries(set).filter(([, a]) => a.source === source));
}

function svidOf(issued: { spiffeId: string; certChain: readonly string[]; expiresAt: number }): SvidResponse {
  return { spiffeId: issued.spiffeId, certChain: issued.certChain, expiresAt: issued.expiresAt };
}

export function registerAgentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', async () => ({ ok: true }));

  app.post('/v1/agent/attest', async (request): Promise<AttestResponse> => {
    const audit = { action: 'agent.attest', resource: '' };
    request.wardAudit = audit;
    const name = field(request.body, 'attestor', isName, 'an attestor name');
    audit.resource = `attestor/${name}`;
    const csr = field(request.body, 'csr', isCsr, 'a PEM CSR');
    const evidence = (request.body as Record<string, unknown>).evidence;
    const attestor = ctx.attestors.get(name);
    if (attestor === undefined) throw new PlatformError('ERR_ATTEST_UNKNOWN_ATTESTOR', `attestor ${name} is not configured`, { details: { attestor: name } });
    if (attestor.kind !== 'node') throw new PlatformError('ERR_ATTEST_NOT_BOUND', `${name} is a workload attestor; attest the node first`, { details: { attestor: name } });
    // Before single-use evidence is spent: the CSR must be sound and, where the attestor can
    // tell the agent ID from the evidence alone (join_token), name that ID.
    ctx.ca.precheckCsr(csr, attestor.predictAgentId?.(evidence, ctx.config.trustDomain));
    const result = await attestor.attest(evidence, { clock: ctx.clock, trustDomain: ctx.config.trustDomain, state: ctx.attestation });
    audit.resource = `agent/${result.agentId}`;
    request.wardActor = `agent:${result.agentId}`;
    const prev = ctx.view.agent(result.agentId) ?? (await ctx.store.agents.get(result.agentId)) ?? undefined;
    if (prev?.revoked === true) throw new ServerError('ERR_SERVER_AGENT_UNKNOWN', 'this agent was revoked; it cannot attest again');
    // The CSR must name the agent ID the attestation yields (checked by the PKI before signing).
    const issued = ctx.ca.issueSvid({ spiffeId: result.agentId, csr, ttlMs: ctx.config.agentSvidTtlMs });
    const source = `attestor:${result.attestor}`;
    await ctx.store.transaction(async (tx) => {
      await tx.agents.upsert({ agentId: result.agentId, spiffeId: result.agentId, attestationType: result.attestor, selectors: result.selectors });
      await tx.attributes.replaceForSource(result.agentId, source, result.attributes);
      await tx.agents.recordSvid({ serial: issued.serial, agentId: result.agentId, spiffeId: result.agentId, expiresAt: issued.expiresAt });
      await tx.audit.append({
        actor: request.wardActor as string, action: 'agent.attest', resource: `agent/${result.agentId}`,
        before: prev === undefined ? null : { selectors: prev.selectors }, after: { attestor: result.attestor, selectors: result.selectors, serial: issued.serial },
      });
    });
    await afterChange(ctx);
    return { agentId: result.agentId, svid: svidOf(issued), bundle: ctx.ca.bundle() };
  });

  app.post('/v1/agent/renew', async (request): Promise<SvidResponse> => {
    const audit = { action: 'agent.renew', resource: '' };
    request.wardAudit = audit;
    const { agentId, serial } = authenticateAgent(ctx, request);
    request.wardActor = `agent:${agentId}`;
    audit.resource = `agent/${agentId}`;
    const csr = field(request.body, 'csr', isCsr, 'a PEM CSR');
    const issued = ctx.ca.issueSvid({ spiffeId: agentId, csr, ttlMs: ctx.config.agentSvidTtlMs });
    await ctx.store.transaction(async (tx) => {
      await tx.agents.recordSvid({ serial: issued.serial, agentId, spiffeId: agentId, expiresAt: issued.expiresAt });
      await tx.audit.append({ actor: request.wardActor as string, action: 'agent.renew', resource: `agent/${agentId}`, before: { serial }, after: { serial: issued.serial, expiresAt: issued.expiresAt } });
    });
    return svidOf(issued);
  });

  app.post('/v1/agent/svids', async (request): Promise<SvidResponse> => {
    const audit = { action: 'svid.issue', resource: '' };
    request.wardAudit = audit;
    const { agentId } = authenticateAgent(ctx, request);
    request.wardActor = `agent:${agentId}`;
    const spiffeId = field(request.body, 'spiffeId', isSpiffeText, 'a SPIFFE ID');
    audit.resource = `workload/${spiffeId}`;
    const csr = field(request.body, 'csr', isCsr, 'a PEM CSR');
    const agent = ctx.view.agent(agentId) as AgentInfo;
    // Admin identities are never minted for workloads, even by an entry registered before the
    // ID was listed in adminSpiffeIds.
    const entry = ctx.config.adminSpiffeIds.includes(spiffeId) ? undefined : ctx.view.entriesFor(spiffeId, agent)[0];
    if (entry === undefined) throw new ServerError('ERR_SERVER_CSR_IDENTITY', 'no registration entry lets this agent mint that SPIFFE ID', { details: { spiffeId: spiffeId.slice(0, 256) } });
    const issued = ctx.ca.issueSvid({ spiffeId, csr, ttlMs: entry.ttlSeconds * 1000 });
    const existing = ctx.view.workload(spiffeId);
    const digest = agent.attributes['image.digest']?.value;
    const imageDigest = typeof digest === 'string' && IMAGE_DIGEST_RE.test(digest) ? digest : null;
    const fresh = existing === undefined || existing.agentId !== agentId || existing.imageDigest !== imageDigest;
    await ctx.store.transaction(async (tx) => {
      await tx.agents.recordSvid({ serial: issued.serial, agentId, spiffeId, expiresAt: issued.expiresAt });
      if (fresh) {
        // The workload inherits what its agent's node attestation verified (host, cloud, cluster facts).
        await tx.workloads.upsert({ spiffeId, agentId, imageDigest });
        await tx.attributes.replaceForSource(spiffeId, `attestor:${agent.attestor}`, reSource(agent.attributes, `attestor:${agent.attestor}`));
        await tx.audit.append({ actor: request.wardActor as string, action: 'workload.register', resource: `workload/${spiffeId}`, before: existing === undefined ? null : { agentId: existing.agentId }, after: { agentId, entry: entry.id, imageDigest } });
      }
    });
    if (fresh) await afterChange(ctx);
    return svidOf(issued);
  });

  app.post('/v1/agent/events', async (request): Promise<EventIngestResponse> => {
    const audit = { action: 'events.ingest', resource: '' };
    request.wardAudit = audit;
    const { agentId } = authenticateAgent(ctx, request);
    request.wardActor = `agent:${agentId}`;
    audit.resource = `agent/${agentId}`;
    const batch = decodeBatchValue(request.body);
    if (batch.agentId !== agentId) throw new ServerError('ERR_SERVER_FORBIDDEN', 'a batch may only carry the calling agent\'s own events', { details: { permission: 'events' } });
    // Every event must be about the agent itself or a workload it serves: an agent cannot put
    // events (denials, traffic) on the record of another agent's workloads.
    const agent = ctx.view.agent(agentId) as AgentInfo;
    const own = new Set<string>([agentId]);
    for (const [i, { event }] of batch.batch.entries()) {
      const subject = event.workload.spiffe_id;
      if (own.has(subject)) continue;
      if (ctx.view.workload(subject)?.agentId === agentId || ctx.view.entriesFor(subject, agent).length > 0) {
        own.add(subject);
        continue;
      }
      throw new ServerError('ERR_SERVER_FORBIDDEN', `batch[${i}]: the event's workload is not served by this agent`, { details: { permission: 'events', path: `batch[${i}].event.workload.spiffe_id` } });
    }
    const out = await ctx.store.events.append(agentId, batch.batch);
    const last = batch.batch.length === 0 ? -1 : Math.max(...batch.batch.map((e) => e.seq));
    return { accepted: out.inserted.length, duplicates: out.duplicates.length, ackedSequence: last };
  });

  app.get<{ Querystring: { since?: string } }>('/v1/agent/watch', async (request, reply) => {
    request.wardAudit = { action: 'agent.watch', resource: '' };
    const { agentId, serial, expiresAt } = authenticateAgent(ctx, request);
    request.wardActor = `agent:${agentId}`;
    const header = request.headers['last-event-id'];
    const sinceText = typeof header === 'string' ? header : request.query.since;
    let since: number | undefined;
    if (sinceText !== undefined) {
      if (!/^\d{1,15}$/.test(sinceText)) throw new ServerError('ERR_SERVER_WATCH_VERSION', 'Last-Event-ID must be a resource version (a non-negative integer)');
      since = Number(sinceText);
    }
    // One agent cannot hold the server's memory and sockets with many streams (checked and
    // subscribed in the same turn of the event loop, so concurrent opens cannot both pass).
    if (ctx.hub.connectionsOf(agentId) >= ctx.config.maxWatchStreamsPerAgent) {
      throw new ServerError('ERR_SERVER_TOO_MANY_STREAMS', `at most ${ctx.config.maxWatchStreamsPerAgent} watch streams per agent`);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const sub = openWatchStream(res, {
      agentId,
      bufferLimitBytes: ctx.config.watchBufferLimitBytes,
      heartbeatMs: ctx.config.watchHeartbeatMs,
      // The stream lives no longer than the SVID that opened it: once that certificate expires
      // or its serial is revoked, nothing more is sent and the agent reconnects with a current one.
      stillValid: () => ctx.clock.now() < expiresAt && !ctx.view.isSerialRevoked(serial),
      untilMs: Math.max(0, expiresAt - ctx.clock.now()),
    });
    sub.unsubscribe = ctx.hub.subscribe(sub, since);
    request.raw.on('close', () => sub.close());
  });
}

/** A watch stream on an HTTP response: bounded buffering, heartbeats, and an end. */
export interface WatchStream extends WatchSubscriber {
  unsubscribe: () => void;
  close(): void;
}

export interface WatchStreamOptions {
  readonly agentId: string;
  /** A reader that stopped reading is cut off once this much is queued. */
  readonly bufferLimitBytes: number;
  readonly heartbeatMs: number;
  /** Checked before every write; false ends the stream. */
  readonly stillValid: () => boolean;
  /** Real-time ms after which the stream is ended regardless (the SVID's remaining life). */
  readonly untilMs: number;
}

export function openWatchStream(res: Writable & { writableLength: number }, options: WatchStreamOptions): WatchStream {
  let open = true;
  const over = (): boolean => res.writableLength > options.bufferLimitBytes;
  const write = (chunk: string): boolean => {
    if (!open) return false;
    // A reader that stopped reading is cut off rather than buffered without bound; it resumes
    // from its last version when it reconnects.
    if (over() || !options.stillValid()) {
      stream.end();
      return false;
    }
    res.write(chunk);
    return true;
  };
  const heartbeat = setInterval(() => write(encodeSseComment('heartbeat')), options.heartbeatMs);
  heartbeat.unref();
  // setTimeout takes at most 2^31-1 ms; a longer-lived SVID is still checked on every write.
  const expiry = setTimeout(() => stream.end(), Math.min(options.untilMs, 2_147_483_647));
  expiry.unref();
  const stream: WatchStream = {
    agentId: options.agentId,
    cursor: newCursor(),
    unsubscribe: () => undefined,
    send: (message) => write(encodeSse({ id: String(message.resourceVersion), event: message.type, data: partJson(message) })),
    close: () => {
      if (!open) return;
      open = false;
      clearInterval(heartbeat);
      clearTimeout(expiry);
      stream.unsubscribe();
    },
    end: () => {
      const wasOpen = open;
      stream.close();
      if (wasOpen) {
        res.end();
        // A reader that is not reading will not take the end either: drop the socket.
        if (over()) res.destroy();
      }
    },
  };
  res.on('close', () => stream.close());
  write(encodeSseComment('ward watch'));
  return stream;
}
