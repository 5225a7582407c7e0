/**
 * A small stand-in for the Kubernetes API server the demo's "pods" belong to, speaking the real
 * JSON of the two calls the `k8s_psat` attestor makes: `TokenReview` (authentication.k8s.io/v1,
 * verifying the projected service-account tokens it minted: ES256, issuer, audience, expiry, and
 * that the bound pod still exists with the same uid) and `GET /api/v1/namespaces/{ns}/pods/{name}`
 * (a Pod, or a 404 Status). Requests without the server's bearer token get a 401 Status.
 *
 * It listens on loopback in plain HTTP (the demo's control plane is its only client); the
 * attestor's TLS path is exercised by the platform tests against test/fakes/kubernetes-api/.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, generateKeyPair, type CryptoKey } from 'jose';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface DemoPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  readonly image: string;
  readonly digest: string;
  readonly labels: Readonly<Record<string, string>>;
}

function podJson(p: DemoPod): unknown {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: p.name, namespace: p.namespace, uid: p.uid, resourceVersion: '4711', creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      labels: p.labels,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: p.name.replace(/-[a-z0-9]+$/, ''), uid: randomUUID(), controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      containers: [{ name: p.labels.app ?? 'app', image: p.image, ports: [{ containerPort: 8080, protocol: 'TCP' }] }],
      serviceAccountName: p.serviceAccount,
      serviceAccount: p.serviceAccount,
      nodeName: 'demo-node-1',
      volumes: [{ name: 'ward-token', projected: { sources: [{ serviceAccountToken: { audience: 'ward', expirationSeconds: 3600, path: 'ward-agent' } }] } }],
    },
    status: {
      phase: 'Running',
      podIP: '10.244.0.10',
      containerStatuses: [{ name: p.labels.app ?? 'app', ready: true, restartCount: 0, started: true, image: p.image, imageID: `${p.image.split(':')[0]}@${p.digest}`, containerID: `containerd://${randomUUID().replaceAll('-', '')}`, state: { running: { startedAt: new Date().toISOString() } } }],
    },
  };
}

const statusBody = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

export class DemoKubeApi {
  readonly #server: Server;
  readonly #bearer: string;
  readonly #pods = new Map<string, DemoPod>();
  #key!: { privateKey: CryptoKey; publicKey: CryptoKey };

  private constructor(bearer: string) {
    this.#bearer = bearer;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(bearer: string): Promise<DemoKubeApi> {
    const api = new DemoKubeApi(bearer);
    api.#key = await generateKeyPair('ES256');
    await new Promise<void>((resolve) => api.#server.listen(0, '127.0.0.1', resolve));
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  addPod(p: Omit<DemoPod, 'uid'>): DemoPod {
    const pod = { ...p, uid: randomUUID() };
    this.#pods.set(`${pod.namespace}/${pod.name}`, pod);
    return pod;
  }

  /** A projected service-account token bound to `pod`, as the kubelet writes it (1 h). */
  mintToken(pod: DemoPod, audience = 'ward'): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      'kubernetes.io': {
        namespace: pod.namespace,
        node: { name: 'demo-node-1', uid: '7d0c4f0e-2b1a-4c8e-9f5d-3a6b8c0d2e4f' },
        pod: { name: pod.name, uid: pod.uid },
        serviceaccount: { name: pod.serviceAccount, uid: randomUUID() },
      },
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'demo-sa-key' })
      .setIssuer(ISSUER)
      .setSubject(`system:serviceaccount:${pod.namespace}:${pod.serviceAccount}`)
      .setAudience(audience)
      .setIssuedAt(now - 5)
      .setNotBefore(now - 5)
      .setExpirationTime(now + 3600)
      .sign(this.#key.privateKey);
  }

  async #review(body: { spec?: { token?: unknown; audiences?: unknown } } | undefined): Promise<unknown> {
    const spec = body?.spec ?? {};
    const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? (spec.audiences as string[]) : [ISSUER];
    const unauthenticated = (error: string) => ({ kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status: { user: {}, error } });
    try {
      const { payload } = await jwtVerify(String(spec.token ?? ''), this.#key.publicKey, { issuer: ISSUER });
      const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      const matched = audiences.filter((a) => aud.includes(a));
      if (matched.length === 0) return unauthenticated('[invalid bearer token, token audiences are invalid for the target audiences]');
      const k = payload['kubernetes.io'] as { namespace: string; pod: { name: string; uid: string }; serviceaccount: { name: string; uid: string }; node: { name: string; uid: string } };
      const pod = this.#pods.get(`${k.namespace}/${k.pod.name}`);
      if (pod === undefined || pod.uid !== k.pod.uid) return unauthenticated('[invalid bearer token, pod not found or uid mismatch]');
      return {
        kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec,
        status: {
          authenticated: true,
          user: {
            username: `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`,
            uid: k.serviceaccount.uid,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
            extra: {
              'authentication.kubernetes.io/node-name': [k.node.name],
              'authentication.kubernetes.io/node-uid': [k.node.uid],
              'authentication.kubernetes.io/pod-name': [k.pod.name],
              'authentication.kubernetes.io/pod-uid': [k.pod.uid],
            },
          },
          audiences: matched,
        },
      };
    } catch (error) {
      return unauthenticated((error as { code?: string }).code === 'ERR_JWT_EXPIRED' ? '[invalid bearer token, service account token has expired]' : '[invalid bearer token, square/go-jose: error in cryptographic primitive]');
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const json = (code: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'audit-id': randomUUID() });
      res.end(text);
    };
    if (req.headers.authorization !== `Bearer ${this.#bearer}`) return json(401, statusBody(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', 'http://kube');
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      let text = '';
      for await (const chunk of req) {
        text += String(chunk);
        if (text.length > 65_536) return json(413, statusBody(413, 'RequestEntityTooLarge', 'request entity too large'));
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return json(400, statusBody(400, 'BadRequest', 'the body is not JSON'));
      }
      return json(201, await this.#review(body as { spec?: { token?: unknown } }));
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const pod = this.#pods.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`);
      return pod === undefined ? json(404, { ...statusBody(404, 'NotFound', `pods "${m[2]}" not found`), details: { name: m[2], kind: 'pods' } }) : json(200, podJson(pod));
    }
    return json(404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
