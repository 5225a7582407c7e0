/**
 * The fastify instance both listeners share the shape of: strict JSON bodies under a size
 * limit, `{code, message}` errors with stable codes (status chosen only here, via
 * {@link httpStatusOf}), an audit record for every refused change, and a bound on what
 * refusals may cost (ADR 0077): past its bucket a source gets 429 and one aggregate audit row
 * per window instead of one per request.
 */
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type RouteOptions } from 'fastify';
import { isWardError } from '../core/errors.js';
import { ServerError, httpStatusOf } from './errors.js';
import type { ServerContext } from './context.js';
import { ANONYMOUS } from './auth/authenticate.js';
import { auditDenied, auditRateLimited } from './services/audit.js';
import { routeAction } from './routes/actions.js';
import { RefusalLimiter, credentialFingerprint, sourceKey, type Surface } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by a route once the caller is known, so refusals are audited under their name. */
    wardActor?: string;
    /** Set by mutating routes: the audit action and resource of this request. */
    wardAudit?: { action: string; resource: string };
  }
}

export interface AppOptions {
  readonly https?: { key: string; cert: string; ca: readonly string[] };
  /** Sees every route as it is added (tests enumerate the routes and their roles). */
  readonly onRoute?: (route: RouteOptions) => void;
}

interface LimiterState {
  readonly limiter: RefusalLimiter;
  timer: NodeJS.Timeout | undefined;
  /** Aggregate rows are written one after another, in window order. */
  writes: Promise<void>;
}

/** One limiter per server context: both listeners (and any instance tests build) share it. */
const limiters = new WeakMap<ServerContext, LimiterState>();

function limiterState(ctx: ServerContext): LimiterState {
  let state = limiters.get(ctx);
  if (state === undefined) {
    state = { limiter: new RefusalLimiter(ctx.config.refusalRateLimit, () => ctx.clock.now()), timer: undefined, writes: Promise.resolve() };
    limiters.set(ctx, state);
  }
  return state;
}

/** The refusal limiter of a server (tests, and the counts behind `ward_server_requests_rate_limited_total`). */
export function refusalLimiterOf(ctx: ServerContext): RefusalLimiter {
  return limiterState(ctx).limiter;
}

/**
 * Appends the aggregate `auth.rate_limited` rows of every window that has ended by the
 * server's clock (every window with `all`, at shutdown); resolves with the number of rows once
 * they are stored. A timer calls it while rows are pending; tests call it after moving the clock.
 */
export function flushRefusalAudit(ctx: ServerContext, all = false): Promise<number> {
  const state = limiterState(ctx);
  const rows = state.limiter.takeRows(all);
  if (state.limiter.pending === 0 && state.timer !== undefined) {
    clearInterval(state.timer);
    state.timer = undefined;
  }
  const written = state.writes.then(async () => {
    for (const row of rows) {
      try {
        await auditRateLimited(ctx, row);
      } catch (error) {
        ctx.logger.error({ err: error, source: row.source, count: row.count }, 'audit append of rate-limited refusals failed');
      }
    }
  });
  state.writes = written;
  return written.then(() => rows.length);
}

function startFlushing(ctx: ServerContext, state: LimiterState): void {
  if (state.timer !== undefined) return;
  const every = Math.min(5000, Math.max(250, Math.floor(ctx.config.refusalRateLimit.windowMs / 4)));
  state.timer = setInterval(() => void flushRefusalAudit(ctx), every);
  state.timer.unref();
}

/**
 * Refusals the limiter charges: failed authentication (401) and authorisation (403) whoever
 * the caller, and any client error of a caller not (yet) identified — a malformed attest, a
 * body too large, a POST to no route. A known caller's bad input is its own, on its own name.
 */
function isChargedRefusal(request: FastifyRequest, status: number): boolean {
  return status === 401 || status === 403 || (request.wardActor === undefined && status >= 400 && status < 500);
}

export function createApp(ctx: ServerContext, options: AppOptions = {}): FastifyInstance {
  const serverOptions: FastifyServerOptions = {
    logger: false,
    bodyLimit: ctx.config.bodyLimitBytes,
    // Route params carry SPIFFE IDs (URL-encoded): allow long ones.
    routerOptions: { maxParamLength: 2048 },
    return503OnClosing: true,
    forceCloseConnections: true,
  };
  const app = options.https === undefined
    ? fastify(serverOptions)
    : fastify({
      ...serverOptions,
      https: { key: options.https.key, cert: options.https.cert, ca: [...options.https.ca], requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    } as FastifyServerOptions);

  // The agent API is the instance that serves /v1/agent/*; its refusals are counted apart.
  let surface: Surface = 'admin';
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1/agent/')) surface = 'agent';
  });
  if (options.onRoute !== undefined) app.addHook('onRoute', options.onRoute);
  // Pending aggregate rows are written before the store closes (the listeners close first).
  app.addHook('onClose', async () => {
    if (limiters.has(ctx)) await flushRefusalAudit(ctx, true);
  });
  // JSON only, parsed strictly; prototype pollution keys refused.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: ctx.config.bodyLimitBytes }, (_req, body, done) => {
    try {
      const text = body as string;
      done(null, text === '' ? undefined : JSON.parse(text, (key, value: unknown) => (key === '__proto__' || key === 'constructor' ? undefined : value)));
    } catch {
      done(new ServerError('ERR_SERVER_BAD_REQUEST', 'the body is not valid JSON', { details: { path: '' } }), undefined);
    }
  });

  app.setNotFoundHandler((request, reply) => {
    void sendError(ctx, request, reply, new ServerError('ERR_SERVER_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`), surface);
  });
  app.setErrorHandler((error, request, reply) => sendError(ctx, request, reply, error, surface));
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    return payload;
  });
  return app;
}

/** Maps fastify's own errors (body limit, media type, JSON) to our codes. */
function toWardError(error: unknown): { code: string; message: string; details?: Readonly<Record<string, unknown>> } {
  if (isWardError(error)) return error.toJSON();
  const e = error as { code?: string; statusCode?: number; validation?: unknown; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { code: 'ERR_SERVER_BODY_TOO_LARGE', message: 'the request body is too large' };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return { code: 'ERR_SERVER_UNSUPPORTED_MEDIA', message: 'send the body as application/json' };
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return { code: 'ERR_SERVER_BAD_REQUEST', message: 'the body is not valid JSON' };
  if (e.validation !== undefined) return { code: 'ERR_SERVER_BAD_REQUEST', message: e.message ?? 'invalid request' };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { code: 'ERR_SERVER_BAD_REQUEST', message: 'invalid request' };
  return { code: 'ERR_INTERNAL', message: 'internal error' };
}

const MAX_ERROR_MESSAGE = 512;
const MAX_ERROR_DETAILS = 1024;

/**
 * A client error as sent: messages and details quote the caller's input (field names, IDs), so
 * both are capped — an error never reflects a large body back.
 */
function bounded(body: { code: string; message: string; details?: Readonly<Record<string, unknown>> }): { code: string; message: string; details?: Readonly<Record<string, unknown>> } {
  const message = body.message.length > MAX_ERROR_MESSAGE ? `${body.message.slice(0, MAX_ERROR_MESSAGE)}…` : body.message;
  if (body.details === undefined) return { code: body.code, message };
  return JSON.stringify(body.details).length > MAX_ERROR_DETAILS ? { code: body.code, message } : { code: body.code, message, details: body.details };
}

/**
 * Charges a refusal to its source; when the source (or every source together) is over its
 * bucket, answers 429 with `Retry-After` and counts the request into the window's aggregate
 * audit row instead of auditing it alone. The 429 does not say what the refusal would have been.
 */
function rateLimited(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, surface: Surface, code: string): FastifyReply | undefined {
  const state = limiterState(ctx);
  const config = ctx.config.refusalRateLimit;
  const source = sourceKey(request.raw.socket.remoteAddress, config.ipv6PrefixLength);
  const authorization = request.headers.authorization;
  const bucketKey = config.key === 'ip+token' && typeof authorization === 'string' ? `${source}#${credentialFingerprint(authorization)}` : source;
  const decision = state.limiter.charge(surface, source, code, bucketKey);
  if (!decision.limited) return undefined;
  startFlushing(ctx, state);
  const message = decision.scope === 'source' ? 'too many refused requests from this address' : 'too many refused requests';
  return reply.status(429).header('retry-after', String(decision.retryAfterSeconds)).type('application/json')
    .send({ code: 'ERR_SERVER_RATE_LIMITED', message: `${message}; retry after ${decision.retryAfterSeconds}s`, details: { retryAfterSeconds: decision.retryAfterSeconds } });
}

export async function sendError(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, error: unknown, surface: Surface = 'admin'): Promise<FastifyReply> {
  const body = toWardError(error);
  const status = httpStatusOf(body.code);
  if (isChargedRefusal(request, status)) {
    const limited = rateLimited(ctx, request, reply, surface, body.code);
    if (limited !== undefined) return limited;
  }
  if (status >= 500) ctx.logger.error({ err: error, url: request.url.split('?')[0], method: request.method }, 'request failed');
  // Every refused change is audited (reads are not, except failed authentication).
  const audit = request.wardAudit ?? (request.method !== 'GET' || status === 401 ? { action: routeAction(request.method, request.routeOptions.url), resource: '' } : undefined);
  if (audit !== undefined && status < 500) {
    try {
      await auditDenied(ctx, { actor: request.wardActor ?? ANONYMOUS, action: audit.action, resource: audit.resource, code: body.code });
    } catch (auditError) {
      ctx.logger.error({ err: auditError }, 'audit append failed');
    }
  }
  // A server-side failure keeps its stable code but never its message or details: they may
  // name hosts, files or driver state. The log has the whole error.
  const sent = status >= 500 ? { code: body.code, message: status === 503 ? 'service unavailable' : 'internal error' } : bounded(body);
  return reply.status(status).type('application/json').send(sent);
}
