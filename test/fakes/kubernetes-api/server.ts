/**
 * A local fake Kubernetes API server over real TLS, serving real Kubernetes JSON:
 * - POST /apis/authentication.k8s.io/v1/tokenreviews (201, TokenReview with status), verifying
 *   projected service-account tokens it minted (ES256 JWTs with the `kubernetes.io` claims),
 *   their expiry and audience, and that the bound pod still exists with the same uid;
 * - GET /api/v1/namespaces/{ns}/pods/{name} (Pod, or a 404 Status);
 * - GET /api/v1/pods (PodList with metadata.resourceVersion);
 * - GET /api/v1/pods?watch=1 (newline-delimited watch events, incl. BOOKMARK when asked and an
 *   in-stream ERROR with a 410 Status for a compacted resourceVersion).
 * Requests without the configured bearer token get a 401 Status, as the real server answers.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, generateKeyPair, type CryptoKey } from 'jose';
import type { TestCert } from '../pki.js';

type Pod = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface WatchEventRecord {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Pod;
}

const status = (code: number, reason: string, message: string, details?: Record<string, unknown>) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  ...(details ? { details } : {}),
  code,
});

/** A realistic Pod of a Deployment, shaped like `kubectl get pod -o json`. */
export function examplePod(options: { namespace?: string; name?: string; serviceAccount?: string; node?: string; labels?: Record<string, string>; image?: string; digest?: string } = {}): Pod {
  const name = options.name ?? `web-7d4b9c8f6d-${randomUUID().slice(0, 5)}`;
  const image = options.image ?? 'registry.example.com/shop/web:1.4.2';
  const digest = options.digest ?? 'sha256:4c3d8e1f0a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d';
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name,
      generateName: 'web-7d4b9c8f6d-',
      namespace: options.namespace ?? 'shop',
      uid: randomUUID(),
      resourceVersion: '0',
      creationTimestamp: '2026-02-28T09:14:03Z',
      labels: options.labels ?? { app: 'web', 'app.kubernetes.io/name': 'web', 'pod-template-hash': '7d4b9c8f6d' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c8f6d', uid: '0f5e8b3a-6c1d-4e2f-9a7b-8c6d5e4f3a2b', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      volumes: [{ name: 'ward-token', projected: { sources: [{ serviceAccountToken: { audience: 'ward', expirationSeconds: 3600, path: 'ward-agent' } }], defaultMode: 420 } }],
      containers: [{ name: 'web', image, ports: [{ containerPort: 8080, protocol: 'TCP' }], resources: {}, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: options.serviceAccount ?? 'web',
      serviceAccount: options.serviceAccount ?? 'web',
      nodeName: options.node ?? 'ip-10-0-1-23.us-west-2.compute.internal',
      securityContext: {},
      schedulerName: 'default-scheduler',
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-02-28T09:14:09Z' }],
      hostIP: '10.0.1.23',
      podIP: '10.0.1.57',
      podIPs: [{ ip: '10.0.1.57' }],
      startTime: '2026-02-28T09:14:03Z',
      containerStatuses: [{
        name: 'web',
        state: { running: { startedAt: '2026-02-28T09:14:08Z' } },
        lastState: {},
        ready: true,
        restartCount: 0,
        image,
        imageID: `${image.split(':')[0]}@${digest}`,
        containerID: 'containerd://9b1f3c5e7a9d2b4f6e8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2a4b6d8f0a1c',
        started: true,
      }],
      qosClass: 'BestEffort',
    },
  };
}

export class FakeKubeApi {
  readonly #server: Server;
  readonly #bearer: string;
  readonly #pods = new Map<string, Pod>(); // ns/name -> pod
  readonly #history: WatchEventRecord[] = [];
  readonly #watchers = new Set<{ res: ServerResponse; bookmarks: boolean; send: (e: WatchEventRecord) => void }>();
  #rv = 1000;
  /** resourceVersions at or below this were compacted: watching from them is 410 Gone. */
  #compactedThrough = 0;
  #key!: { privateKey: CryptoKey; publicKey: CryptoKey };
  /** Every request path, for assertions. */
  readonly requests: string[] = [];
  /** Set to make the API server answer 503 to everything. */
  down = false;

  private constructor(tls: TestCert, bearer: string) {
    this.#bearer = bearer;
    this.#server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => void this.#handle(req, res));
  }

  static async start(tls: TestCert, bearer: string): Promise<FakeKubeApi> {
    const fake = new FakeKubeApi(tls, bearer);
    fake.#key = await generateKeyPair('ES256');
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  #record(type: WatchEventRecord['type'], pod: Pod): void {
    this.#rv++;
    pod.metadata.resourceVersion = String(this.#rv);
    const rec = { rv: this.#rv, type, object: structuredClone(pod) };
    this.#history.push(rec);
    for (const w of this.#watchers) w.send(rec);
  }

  addPod(pod: Pod): Pod {
    this.#pods.set(`${pod.metadata.namespace}/${pod.metadata.name}`, pod);
    this.#record('ADDED', pod);
    return pod;
  }

  updatePod(pod: Pod): void {
    this.#record('MODIFIED', pod);
  }

  deletePod(namespace: string, name: string): void {
    const pod = this.#pods.get(`${namespace}/${name}`);
    if (!pod) return;
    this.#pods.delete(`${namespace}/${name}`);
    this.#record('DELETED', pod);
  }

  /** Forgets history up to now (etcd compaction): older resourceVersions become 410 Gone. */
  compact(): void {
    this.#compactedThrough = this.#rv;
    this.#history.length = 0;
  }

  /** Sends a BOOKMARK with the current resourceVersion to every open watch. */
  bookmark(): void {
    for (const w of this.#watchers) if (w.bookmarks) w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) } } })}\n`);
  }

  /** Sends the in-stream 410 ERROR to every open watch and ends them (as after compaction). */
  expireWatches(): void {
    this.compact();
    for (const w of this.#watchers) {
      w.res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${this.#compactedThrough - 1} (${this.#compactedThrough})`) })}\n`);
    }
    this.#watchers.clear();
  }

  /** Ends every open watch normally (as the server's watch timeout does). */
  endWatches(): void {
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
  }

  /** Mints a projected service-account token for a pod, as the kubelet would request it. */
  async mintToken(pod: Pod, options: { audience?: string; expiresAt?: number; issuedAt?: number } = {}): Promise<string> {
    const iat = Math.floor((options.issuedAt ?? Date.parse('2026-03-01T11:30:00Z')) / 1000);
    const exp = Math.floor((options.expiresAt ?? Date.parse('2026-03-01T12:30:00Z')) / 1000);
    return new SignJWT({
      'kubernetes.io': {
        namespace: pod.metadata.namespace,
        node: { name: pod.spec.nodeName, uid: '5c1a2b3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d' },
        pod: { name: pod.metadata.name, uid: pod.metadata.uid },
        serviceaccount: { name: pod.spec.serviceAccountName, uid: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d' },
      },
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'fake-kube-sa-key' })
      .setIssuer('https://kubernetes.default.svc.cluster.local')
      .setSubject(`system:serviceaccount:${pod.metadata.namespace}:${pod.spec.serviceAccountName}`)
      .setAudience(options.audience ?? 'ward')
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .sign(this.#key.privateKey);
  }

  /**
   * Behave like an authenticator that is not audience-aware (a webhook token authenticator, or an
   * API server whose own audience the token carries): `spec.audiences` is ignored and
   * `status.audiences` omitted. The TokenReview docs say such an answer means the token is valid
   * for the API server's audience, not for the one asked about.
   */
  audienceUnaware = false;

  /** The fake's notion of "now" for token expiry (set by tests to the frozen clock). */
  now = (): number => Date.parse('2026-03-01T12:00:00Z');

  async #tokenReview(body: any): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const spec = body?.spec ?? {};
    const audiences: string[] = Array.isArray(spec.audiences) && spec.audiences.length > 0 && !this.audienceUnaware ? spec.audiences : ['https://kubernetes.default.svc.cluster.local'];
    const unauth = (error: string) => ({ kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status: { user: {}, error } });
    try {
      const { payload } = await jwtVerify(String(spec.token ?? ''), this.#key.publicKey, { currentDate: new Date(this.now()), issuer: 'https://kubernetes.default.svc.cluster.local' });
      const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      const matched = audiences.filter((a) => aud.includes(a));
      if (matched.length === 0) return unauth(`[invalid bearer token, token audiences ${JSON.stringify(aud)} is invalid for the target audiences ${JSON.stringify(audiences)}]`);
      const k = payload['kubernetes.io'] as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      const pod = this.#pods.get(`${k.namespace}/${k.pod.name}`);
      if (!pod || pod.metadata.uid !== k.pod.uid) return unauth('[invalid bearer token, pod not found or uid mismatch]');
      return {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec,
        status: {
          authenticated: true,
          user: {
            username: `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`,
            uid: k.serviceaccount.uid,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
            extra: {
              'authentication.kubernetes.io/credential-id': [`JTI=${randomUUID()}`],
              'authentication.kubernetes.io/node-name': [k.node.name],
              'authentication.kubernetes.io/node-uid': [k.node.uid],
              'authentication.kubernetes.io/pod-name': [k.pod.name],
              'authentication.kubernetes.io/pod-uid': [k.pod.uid],
            },
          },
          ...(this.audienceUnaware ? {} : { audiences: matched }),
        },
      };
    } catch (error) {
      const expired = (error as { code?: string }).code === 'ERR_JWT_EXPIRED';
      return unauth(expired ? '[invalid bearer token, service account token has expired]' : '[invalid bearer token, square/go-jose: error in cryptographic primitive]');
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fake');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const json = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json', 'audit-id': randomUUID() });
      res.end(JSON.stringify(body));
    };
    if (this.down) return json(503, status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
    if (req.headers.authorization !== `Bearer ${this.#bearer}`) return json(401, status(401, 'Unauthorized', 'Unauthorized'));
    let raw = '';
    for await (const chunk of req) raw += chunk;

    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return json(400, status(400, 'BadRequest', 'the object provided is unrecognized'));
      }
      return json(201, await this.#tokenReview(body));
    }
    const podPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && podPath) {
      const pod = this.#pods.get(`${decodeURIComponent(podPath[1]!)}/${decodeURIComponent(podPath[2]!)}`);
      if (!pod) return json(404, status(404, 'NotFound', `pods "${podPath[2]}" not found`, { name: podPath[2], kind: 'pods' }));
      return json(200, pod);
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/pods') {
      if (url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true') return this.#watch(url, res);
      return json(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) }, items: [...this.#pods.values()] });
    }
    return json(404, status(404, 'NotFound', 'the server could not find the requested resource'));
  }

  #watch(url: URL, res: ServerResponse): void {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    const bookmarks = url.searchParams.get('allowWatchBookmarks') === 'true';
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (from > 0 && from < this.#compactedThrough) {
      // The real API server reports a too-old resourceVersion inside the 200 stream.
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.#compactedThrough})`) })}\n`);
      return;
    }
    const line = (e: WatchEventRecord): string => `${JSON.stringify({ type: e.type, object: e.object })}\n`;
    for (const e of this.#history) if (e.rv > from) res.write(line(e));
    this.#watchers.add({ res, bookmarks, send: (e: WatchEventRecord) => void res.write(line(e)) });
    res.on('close', () => {
      for (const x of this.#watchers) if (x.res === res) this.#watchers.delete(x);
    });
  }

  async close(): Promise<void> {
    for (const w of this.#watchers) w.res.destroy();
    this.#watchers.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
