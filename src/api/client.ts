/**
 * The typed client of the Ward server API, used by the CLI (admin API, bearer token) and by the
 * agent (agent API, mutual TLS with its SVID). One request function; every answer is either the
 * typed JSON body or a {@link ServerReplyError} carrying the server's stable code.
 */
import http from 'node:http';
import https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import type {
  AdminTokenRequest, AdminTokenResponse, AgentInfo, AgentRenewRequest, ApplyResponse, AttestRequest, AttestResponse,
  AuditRecord, Entry, EventIngestResponse, JoinTokenRequest, JoinTokenResponse, ListResponse, PolicyRecord,
  ProvenanceImportResponse, ScanImportResponse, SvidResponse, WatchMessage, Workload, WorkloadSvidRequest,
} from './types.js';
import { ApiError, ServerReplyError } from './errors.js';
import { SseDecoder } from './sse.js';

export interface ClientTls {
  /** PEM CA certificates (the Ward trust bundle) the server certificate must chain to. */
  readonly ca: string | readonly string[];
  /** Client certificate chain (PEM) and key for mutual TLS. */
  readonly cert?: string;
  readonly key?: string;
  /** The SPIFFE ID the server must present (URI SAN); replaces host-name checking. */
  readonly serverSpiffeId?: string;
}

export interface ClientOptions {
  /** `http(s)://host:port` */
  readonly baseUrl: string;
  readonly token?: string;
  readonly tls?: ClientTls;
  readonly timeoutMs?: number;
  /** Cap on a JSON answer; larger answers fail with ERR_API_BAD_RESPONSE. */
  readonly maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** `details.reason` of the ERR_API_UNREACHABLE a watch rejects with when its idle timeout fires. */
export const WATCH_IDLE_TIMEOUT = 'idle_timeout';

export interface WatchOptions {
  /** Resource version to resume after (sent as `Last-Event-ID`). */
  readonly since?: string;
  readonly signal: AbortSignal;
  readonly onMessage: (msg: WatchMessage) => void;
  /** The server accepted the stream (HTTP 200). */
  readonly onOpen?: () => void;
  /** Bytes arrived: the response head, a message or a heartbeat comment. */
  readonly onActivity?: () => void;
  /** Reject with ERR_API_UNREACHABLE (`details.reason` `idle_timeout`) when nothing arrives for this long. */
  readonly idleTimeoutMs?: number;
}
const DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024;

/** Verifies the server's URI SAN instead of its host name (SPIFFE authentication). */
export function spiffeServerCheck(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const sans = (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
    if (sans.length === 1 && sans[0] === expected) return undefined;
    return new ApiError('ERR_API_UNREACHABLE', `server certificate does not carry the SPIFFE ID ${expected}`);
  };
}

export class WardClient {
  readonly #base: URL;
  readonly #options: ClientOptions;
  readonly #agent: http.Agent;

  constructor(options: ClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new ApiError('ERR_API_NO_SERVER', `"${options.baseUrl}" is not a URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new ApiError('ERR_API_NO_SERVER', `"${options.baseUrl}" must be http:// or https://`);
    this.#base = base;
    this.#options = options;
    const tls = options.tls;
    this.#agent = base.protocol === 'https:'
      ? new https.Agent({
        keepAlive: true,
        ...(tls === undefined ? {} : {
          ca: typeof tls.ca === 'string' ? tls.ca : [...tls.ca],
          ...(tls.cert === undefined ? {} : { cert: tls.cert }),
          ...(tls.key === undefined ? {} : { key: tls.key }),
          ...(tls.serverSpiffeId === undefined ? {} : { checkServerIdentity: spiffeServerCheck(tls.serverSpiffeId) }),
        }),
      })
      : new http.Agent({ keepAlive: true });
  }

  /** Closes pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  #open(method: string, path: string, headers: Record<string, string>, signal?: AbortSignal): http.ClientRequest {
    const url = new URL(path, this.#base);
    const mod = url.protocol === 'https:' ? https : http;
    const allHeaders: Record<string, string> = { accept: 'application/json', ...headers };
    if (this.#options.token !== undefined) allHeaders.authorization = `Bearer ${this.#options.token}`;
    return mod.request(url, { method, headers: allHeaders, agent: this.#agent, ...(signal === undefined ? {} : { signal }) });
  }

  /** One JSON request. Non-2xx answers reject with {@link ServerReplyError}. */
  request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = payload === undefined ? {} : { 'content-type': contentType, 'content-length': String(Buffer.byteLength(payload)) };
    const max = this.#options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
    return new Promise<T>((resolve, reject) => {
      const req = this.#open(method, path, headers);
      req.setTimeout(this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => req.destroy(new ApiError('ERR_API_UNREACHABLE', `${method} ${path}: timed out`)));
      req.on('error', (error) => reject(error instanceof ApiError ? error : new ApiError('ERR_API_UNREACHABLE', `${method} ${this.#base.origin}${path}: ${(error as Error).message}`, { cause: error })));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) res.destroy(new ApiError('ERR_API_BAD_RESPONSE', `answer larger than ${max} bytes`));
          else chunks.push(c);
        });
        res.on('error', (error) => reject(error instanceof ApiError ? error : new ApiError('ERR_API_UNREACHABLE', (error as Error).message, { cause: error })));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            reject(new ApiError('ERR_API_BAD_RESPONSE', `${method} ${path}: answer is not JSON (HTTP ${res.statusCode})`));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const err = parsed as { code?: unknown; message?: unknown; details?: unknown } | undefined;
          if (err && typeof err.code === 'string' && typeof err.message === 'string') {
            reject(new ServerReplyError(status, err.code, err.message, typeof err.details === 'object' && err.details !== null ? err.details as Record<string, unknown> : undefined));
          } else {
            reject(new ApiError('ERR_API_BAD_RESPONSE', `${method} ${path}: HTTP ${status} without an error body`));
          }
        });
      });
      req.end(payload);
    });
  }

  // ---- admin API ----
  listWorkloads(): Promise<ListResponse<Workload>> { return this.request('GET', '/v1/workloads'); }
  getWorkload(spiffeId: string): Promise<Workload> { return this.request('GET', `/v1/workloads/${encodeURIComponent(spiffeId)}`); }
  listEntries(): Promise<ListResponse<Entry>> { return this.request('GET', '/v1/entries'); }
  deleteEntry(id: string): Promise<{ deleted: string }> { return this.request('DELETE', `/v1/entries/${encodeURIComponent(id)}`); }
  listPolicies(): Promise<ListResponse<PolicyRecord>> { return this.request('GET', '/v1/policies'); }
  deletePolicy(name: string): Promise<{ deleted: string }> { return this.request('DELETE', `/v1/policies/${encodeURIComponent(name)}`); }
  listAgents(): Promise<ListResponse<AgentInfo>> { return this.request('GET', '/v1/agents'); }
  revokeAgent(agentId: string): Promise<AgentInfo> { return this.request('POST', `/v1/agents/${encodeURIComponent(agentId)}/revoke`, {}); }
  listAudit(query: { limit?: number; afterId?: number } = {}): Promise<ListResponse<AuditRecord>> {
    const q = new URLSearchParams();
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    if (query.afterId !== undefined) q.set('after', String(query.afterId));
    const qs = q.toString();
    return this.request('GET', `/v1/audit${qs === '' ? '' : `?${qs}`}`);
  }
  apply(documents: readonly unknown[], dryRun = false): Promise<ApplyResponse> { return this.request('POST', '/v1/apply', { documents, dryRun }); }
  createJoinToken(req: JoinTokenRequest = {}): Promise<JoinTokenResponse> { return this.request('POST', '/v1/tokens/join', req); }
  createAdminToken(req: AdminTokenRequest): Promise<AdminTokenResponse> { return this.request('POST', '/v1/tokens/admin', req); }
  /** Sends a scanner report as is (Trivy, Grype, CycloneDX VEX JSON); `imageDigest` for reports that name no image. */
  importScan(reportJson: string, imageDigest?: string): Promise<ScanImportResponse> {
    return this.request('POST', `/v1/scans${imageDigest === undefined ? '' : `?imageDigest=${encodeURIComponent(imageDigest)}`}`, reportJson);
  }

  /** Sends a DSSE envelope carrying an in-toto Statement with SLSA provenance. */
  importProvenance(envelope: unknown): Promise<ProvenanceImportResponse> { return this.request('POST', '/v1/provenance', envelope); }

  // ---- agent API ----
  attest(req: AttestRequest): Promise<AttestResponse> { return this.request('POST', '/v1/agent/attest', req); }
  renewAgent(req: AgentRenewRequest): Promise<SvidResponse> { return this.request('POST', '/v1/agent/renew', req); }
  issueWorkloadSvid(req: WorkloadSvidRequest): Promise<SvidResponse> { return this.request('POST', '/v1/agent/svids', req); }
  /** Sends one event batch (the events layer's batch JSON); retried batches are stored once. */
  sendEvents(batch: unknown): Promise<EventIngestResponse> { return this.request('POST', '/v1/agent/events', batch); }

  /**
   * Opens the agent's watch stream and calls `onMessage` for each message until `signal` aborts
   * or the stream ends. Resolves with the last resource version seen, to resume from.
   *
   * Liveness: `onActivity` is called whenever bytes arrive (the response head, a message, or a
   * heartbeat comment, which carries no message). With `idleTimeoutMs`, a stream on which nothing
   * arrives for that long (no response head, no event, no heartbeat) is presumed dead: the request
   * is destroyed and the promise rejects with ERR_API_UNREACHABLE, `details.reason` = `idle_timeout`.
   * This catches a peer that vanished without closing the TCP connection, which the OS notices
   * only after minutes of keepalive probes.
   */
  watch(options: WatchOptions): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (options.since !== undefined) headers['last-event-id'] = options.since;
      const decoder = new SseDecoder();
      let settled = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        if (idle !== undefined) clearTimeout(idle);
        if (error === undefined || options.signal.aborted) resolve(decoder.lastEventId ?? options.since);
        else reject(error);
      };
      const idleMs = options.idleTimeoutMs;
      if (idleMs !== undefined && !(Number.isFinite(idleMs) && idleMs > 0)) throw new ApiError('ERR_API_INPUT', `watch: idleTimeoutMs must be a positive number of ms, not ${idleMs}`);
      const req = this.#open('GET', '/v1/agent/watch', headers, options.signal);
      if (idleMs !== undefined) {
        idle = setTimeout(() => {
          const error = new ApiError('ERR_API_UNREACHABLE', `watch: nothing received for ${idleMs} ms (no event, no heartbeat); the stream is presumed dead`, { details: { reason: WATCH_IDLE_TIMEOUT, idleTimeoutMs: idleMs } });
          finish(error);
          req.destroy(error);
        }, idleMs);
        idle.unref();
      }
      const activity = (): void => {
        idle?.refresh();
        options.onActivity?.();
      };
      req.on('error', (error) => finish(options.signal.aborted ? undefined : new ApiError('ERR_API_UNREACHABLE', `watch: ${error.message}`, { cause: error })));
      req.on('response', (res) => {
        activity();
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code: string; message: string };
              finish(new ServerReplyError(res.statusCode ?? 0, body.code, body.message));
            } catch {
              finish(new ApiError('ERR_API_BAD_RESPONSE', `watch: HTTP ${res.statusCode}`));
            }
          });
          return;
        }
        options.onOpen?.();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (settled) return;
          activity();
          try {
            for (const msg of decoder.push(chunk)) {
              let parsed: WatchMessage;
              try {
                parsed = JSON.parse(msg.data) as WatchMessage;
              } catch {
                throw new ApiError('ERR_API_BAD_RESPONSE', 'watch: a message is not JSON');
              }
              options.onMessage(parsed);
            }
          } catch (error) {
            res.destroy();
            finish(error);
          }
        });
        res.on('end', () => finish());
        res.on('error', (error) => finish(options.signal.aborted ? undefined : error));
      });
      req.end();
    });
  }
}
