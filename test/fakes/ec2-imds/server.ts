/**
 * A local fake of the EC2 Instance Metadata Service (IMDSv2), serving what AWS documents:
 * `PUT /latest/api/token` (TTL header required) and, with the session token,
 * `/latest/dynamic/instance-identity/document`, `/pkcs7` and `/rsa2048`. The document is
 * AWS's JSON layout; the signature is made by real OpenSSL with a test key standing in for
 * AWS's, in the form IMDS serves: a SignedData with the document attached, BER
 * indefinite-length encoded (base64 starting `MIAGCSqGSIb3DQEHAqCAMIAC…`), signed attributes,
 * SHA-256, no certificates, base64 without PEM armour (`openssl smime -sign -nodetach -stream`).
 * AWS's documented check `openssl smime -verify -content document` accepts it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TempDir, TestCert } from '../pki.js';

export interface InstanceFacts {
  readonly accountId: string;
  readonly region: string;
  readonly availabilityZone: string;
  readonly instanceId: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly privateIp: string;
  readonly pendingTime: string;
}

/** The document exactly as IMDS formats it (two-space indent, `"key" : value`). */
export function renderDocument(f: InstanceFacts): string {
  const fields: [string, unknown][] = [
    ['accountId', f.accountId],
    ['architecture', 'x86_64'],
    ['availabilityZone', f.availabilityZone],
    ['billingProducts', null],
    ['devpayProductCodes', null],
    ['marketplaceProductCodes', null],
    ['imageId', f.imageId],
    ['instanceId', f.instanceId],
    ['instanceType', f.instanceType],
    ['kernelId', null],
    ['pendingTime', f.pendingTime],
    ['privateIp', f.privateIp],
    ['ramdiskId', null],
    ['region', f.region],
    ['version', '2017-09-30'],
  ];
  return `{\n${fields.map(([k, v]) => `  "${k}" : ${JSON.stringify(v)}`).join(',\n')}\n}`;
}

/** Signs `document` with OpenSSL as IMDS's rsa2048 signature is made (see the file comment). */
export function signDocument(dir: TempDir, signer: TestCert, document: string): string {
  const docPath = dir.file(`doc-${randomBytes(6).toString('hex')}.json`, document);
  const out = execFileSync('openssl', ['smime', '-sign', '-nodetach', '-stream', '-binary', '-nocerts', '-md', 'sha256', '-signer', signer.certPath, '-inkey', signer.keyPath, '-in', docPath, '-outform', 'PEM'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8');
  return out.replace(/-----(BEGIN|END) PKCS7-----/g, '').trim();
}

export function exampleInstance(n: number): InstanceFacts {
  return {
    accountId: '123456789012',
    region: 'us-west-2',
    availabilityZone: 'us-west-2b',
    instanceId: `i-${(0x1234567890abcdef0n + BigInt(n)).toString(16).padStart(17, '0')}`,
    imageId: 'ami-5fb8c835',
    instanceType: 't2.micro',
    privateIp: '10.158.112.84',
    pendingTime: '2026-02-19T16:32:11Z',
  };
}

export class FakeImds {
  readonly #server: Server;
  readonly #tokens = new Set<string>();
  document: string;
  signature: string;
  /** Count of GETs refused for lacking a valid session token (IMDSv1 attempts). */
  refused = 0;

  private constructor(document: string, signature: string) {
    this.document = document;
    this.signature = signature;
    this.#server = createServer((req, res) => {
      const send = (status: number, body: string, type = 'text/plain'): void => {
        res.writeHead(status, { 'content-type': type, server: 'EC2ws' });
        res.end(body);
      };
      if (req.method === 'PUT' && req.url === '/latest/api/token') {
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return send(400, '');
        const token = randomBytes(40).toString('base64');
        this.#tokens.add(token);
        return send(200, token);
      }
      if (req.method !== 'GET') return send(405, '');
      const token = req.headers['x-aws-ec2-metadata-token'];
      if (typeof token !== 'string' || !this.#tokens.has(token)) {
        this.refused++;
        return send(401, '');
      }
      switch (req.url) {
        case '/latest/dynamic/instance-identity/document':
          return send(200, this.document, 'text/plain');
        case '/latest/dynamic/instance-identity/rsa2048':
        case '/latest/dynamic/instance-identity/pkcs7':
          return send(200, this.signature);
        default:
          return send(404, '<?xml version="1.0" encoding="iso-8859-1"?>\n<title>404 - Not Found</title>', 'text/html');
      }
    });
  }

  static async start(document: string, signature: string): Promise<FakeImds> {
    const fake = new FakeImds(document, signature);
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
