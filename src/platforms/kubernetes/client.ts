/**
 * A minimal Kubernetes API client: exactly what attestation needs, over HTTPS with the cluster
 * CA and a bearer token. TokenReview (authentication.k8s.io/v1), get/list Pods, and a raw watch
 * stream of Pods (see watch.ts for resume and 410 handling).
 */
import type { IncomingMessage } from 'node:http';
import { PlatformError } from '../errors.js';
import { expectStatus, invalidResponse, jsonBody, openStream, platformRequest } from '../http.js';
import { isPlainObject } from '../evidence.js';

export interface KubeClientOptions {
  /** `https://host:port` of the API server. */
  readonly apiServer: string;
  /** PEM CA bundle of the API server. */
  readonly ca?: string;
  /** Bearer token with `create tokenreviews` and `get/list/watch pods`. */
  readonly token: string;
  readonly timeoutMs?: number;
}

export interface TokenReviewStatus {
  readonly authenticated: boolean;
  readonly username: string | undefined;
  readonly uid: string | undefined;
  readonly extra: Readonly<Record<string, readonly string[]>>;
  readonly audiences: readonly string[] | undefined;
  readonly error: string | undefined;
}

export interface ListOptions {
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
}

/** The raw JSON of a Pod (parsed further by pod.ts). */
export type PodJson = Readonly<Record<string, unknown>>;

export class KubeClient {
  readonly #o: KubeClientOptions;

  constructor(options: KubeClientOptions) {
    this.#o = { ...options, apiServer: options.apiServer.replace(/\/+$/, '') };
  }

  #req(path: string, extra: { method?: 'GET' | 'POST'; body?: string; signal?: AbortSignal; timeoutMs?: number; maxBodyBytes?: number } = {}) {
    return {
      url: `${this.#o.apiServer}${path}`,
      method: extra.method ?? 'GET',
      headers: { authorization: `Bearer ${this.#o.token}`, ...(extra.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(extra.body === undefined ? {} : { body: extra.body }),
      ...(this.#o.ca === undefined ? {} : { ca: this.#o.ca }),
      timeoutMs: extra.timeoutMs ?? this.#o.timeoutMs ?? 10_000,
      maxBodyBytes: extra.maxBodyBytes ?? 4 * 1024 * 1024,
      ...(extra.signal ? { signal: extra.signal } : {}),
    } as const;
  }

  /** POST /apis/authentication.k8s.io/v1/tokenreviews. */
  async tokenReview(token: string, audiences: readonly string[], signal?: AbortSignal): Promise<TokenReviewStatus> {
    const what = 'TokenReview';
    const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } });
    const res = expectStatus(await platformRequest(this.#req('/apis/authentication.k8s.io/v1/tokenreviews', { method: 'POST', body, ...(signal ? { signal } : {}) })), what, [200, 201]);
    const review = jsonBody(res, what);
    if (!isPlainObject(review) || review.kind !== 'TokenReview') throw invalidResponse(what, 'kind');
    const status = review.status;
    if (!isPlainObject(status)) throw invalidResponse(what, 'status');
    const user = isPlainObject(status.user) ? status.user : {};
    const extra: Record<string, readonly string[]> = {};
    if (isPlainObject(user.extra)) {
      for (const [k, v] of Object.entries(user.extra)) {
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) extra[k] = v as string[];
      }
    }
    return {
      authenticated: status.authenticated === true,
      username: typeof user.username === 'string' ? user.username : undefined,
      uid: typeof user.uid === 'string' ? user.uid : undefined,
      extra,
      audiences: Array.isArray(status.audiences) && status.audiences.every((a) => typeof a === 'string') ? (status.audiences as string[]) : undefined,
      error: typeof status.error === 'string' ? status.error : undefined,
    };
  }

  /** GET /api/v1/namespaces/{ns}/pods/{name}; undefined when the pod does not exist. */
  async getPod(namespace: string, name: string, signal?: AbortSignal): Promise<PodJson | undefined> {
    const res = await platformRequest(this.#req(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, signal ? { signal } : {}));
    if (res.status === 404) return undefined;
    const pod = jsonBody(expectStatus(res, 'get Pod'), 'get Pod');
    if (!isPlainObject(pod) || pod.kind !== 'Pod') throw invalidResponse('get Pod', 'kind');
    return pod;
  }

  /** GET /api/v1/pods (all namespaces): items and the list's resourceVersion. */
  async listPods(options: ListOptions = {}, signal?: AbortSignal): Promise<{ items: PodJson[]; resourceVersion: string }> {
    const q = new URLSearchParams();
    if (options.fieldSelector) q.set('fieldSelector', options.fieldSelector);
    if (options.labelSelector) q.set('labelSelector', options.labelSelector);
    const qs = q.toString();
    const res = expectStatus(await platformRequest(this.#req(`/api/v1/pods${qs ? `?${qs}` : ''}`, { maxBodyBytes: 64 * 1024 * 1024, ...(signal ? { signal } : {}) })), 'list Pods');
    const list = jsonBody(res, 'list Pods');
    if (!isPlainObject(list) || list.kind !== 'PodList' || !Array.isArray(list.items)) throw invalidResponse('list Pods', 'items');
    const meta = list.metadata;
    if (!isPlainObject(meta) || typeof meta.resourceVersion !== 'string') throw invalidResponse('list Pods', 'metadata.resourceVersion');
    return { items: list.items.filter(isPlainObject), resourceVersion: meta.resourceVersion };
  }

  /**
   * Opens GET /api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=RV. Resolves with
   * the streaming response (newline-delimited watch events).
   */
  async openPodWatch(resourceVersion: string, options: ListOptions & { timeoutSeconds?: number } = {}, signal?: AbortSignal): Promise<IncomingMessage> {
    const q = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true', resourceVersion });
    if (options.fieldSelector) q.set('fieldSelector', options.fieldSelector);
    if (options.labelSelector) q.set('labelSelector', options.labelSelector);
    if (options.timeoutSeconds !== undefined) q.set('timeoutSeconds', String(options.timeoutSeconds));
    const res = await openStream(this.#req(`/api/v1/pods?${q.toString()}`, { timeoutMs: 0, ...(signal ? { signal } : {}) }));
    if (res.statusCode !== 200) {
      res.resume();
      throw new PlatformError('ERR_PLATFORM_HTTP_STATUS', `watch Pods: HTTP ${res.statusCode}`, { details: { status: res.statusCode } });
    }
    return res;
  }
}
