// Starts a real `ward server` (the wiring function, real listeners, real TLS) on SQLite in a temp
// dir or on PostgreSQL at 127.0.0.1:5432/test in a unique schema, plus a scripted agent that
// speaks the agent API exactly as `ward agent` will: attest with a join token and a CSR, then
// mutual TLS with its SVID for renewals, workload SVIDs, the watch stream and event batches.
import { execFileSync } from 'node:child_process';
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { WardClient } from '../../../src/api/client.js';
import type { Clock } from '../../../src/core/clock.js';
import type { AttestResponse, SvidResponse, WatchMessage } from '../../../src/api/types.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { generateP256KeyPair, privateKeyToPem } from '../../../src/pki/keys.js';
import { hashJoinToken, joinTokenId } from '../../../src/platforms/join-token/token.js';
import { parseServerConfig } from '../../../src/server/config.js';
import { initServer, startServer, type RunningServer } from '../../../src/server/server.js';

export const TRUST_DOMAIN = 'ward.test';
export const PG_BASE_URL = process.env['WARD_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestServer {
  readonly server: RunningServer;
  readonly admin: WardClient;
  readonly bootstrapToken: string;
  readonly dir: string;
  readonly storeUrl: string;
  /** Stops the server, drops the schema / temp dir. */
  cleanup(): Promise<void>;
}

export async function startTestServer(kind: 'sqlite' | 'postgres', extra: Record<string, unknown> = {}, clock?: Clock): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ward-server-'));
  const schema = `ward_srv_${randomBytes(6).toString('hex')}`;
  const storeUrl = kind === 'sqlite' ? `sqlite:${join(dir, 'ward.db')}` : `${PG_BASE_URL}?schema=${schema}`;
  const config = parseServerConfig({
    dataDir: dir, store: storeUrl, trustDomain: TRUST_DOMAIN, adminListen: '127.0.0.1:0', agentListen: '127.0.0.1:0', watchHeartbeat: '5s', ...extra,
  });
  const dropSchema = async (): Promise<void> => {
    if (kind !== 'postgres') return;
    const client = new pg.Client({ connectionString: PG_BASE_URL });
    await client.connect();
    try {
      await client.query(`drop schema if exists "${schema}" cascade`);
    } finally {
      await client.end();
    }
  };
  let init: Awaited<ReturnType<typeof initServer>>;
  let server: RunningServer;
  try {
    init = await initServer({ config, ...(clock === undefined ? {} : { clock }) });
    server = await startServer({ config, ...(clock === undefined ? {} : { clock }) });
  } catch (error) {
    await dropSchema().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const admin = new WardClient({ baseUrl: server.adminUrl, token: init.adminToken });
  return {
    server, admin, bootstrapToken: init.adminToken, dir, storeUrl,
    async cleanup() {
      admin.close();
      await server.close();
      await dropSchema();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function expectedAgentId(joinToken: string): string {
  return `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/${joinTokenId(hashJoinToken(joinToken))}`;
}

/** A client of the agent API, as `ward agent` uses it. */
export class ScriptedAgent {
  readonly #server: RunningServer;
  readonly key = generateP256KeyPair();
  agentId = '';
  svid: SvidResponse | undefined;
  bundle: readonly string[] = [];
  #client: WardClient | undefined;

  constructor(server: RunningServer) {
    this.#server = server;
  }

  /** Server-authenticated TLS only (no client certificate yet). */
  bootstrapClient(): WardClient {
    return new WardClient({ baseUrl: this.#server.agentUrl, tls: { ca: [...this.#server.bundle], serverSpiffeId: this.#server.serverSpiffeId } });
  }

  async attest(joinToken: string, agentId = expectedAgentId(joinToken)): Promise<AttestResponse> {
    const csr = createSvidCsr({ spiffeId: agentId, privateKey: this.key.privateKey }).pem;
    const c = this.bootstrapClient();
    try {
      const res = await c.attest({ attestor: 'join_token', evidence: { token: joinToken }, csr });
      this.agentId = res.agentId;
      this.svid = res.svid;
      this.bundle = res.bundle;
      this.#client?.close();
      this.#client = undefined;
      return res;
    } finally {
      c.close();
    }
  }

  /** A new mutual-TLS client with the current SVID. */
  newClient(): WardClient {
    if (this.svid === undefined) throw new Error('not attested');
    return new WardClient({
      baseUrl: this.#server.agentUrl,
      tls: { ca: [...this.bundle], cert: this.svid.certChain.join(''), key: privateKeyToPem(this.key.privateKey), serverSpiffeId: this.#server.serverSpiffeId },
    });
  }

  /** The shared mutual-TLS client with the current SVID (replaced after a renewal). */
  client(): WardClient {
    this.#client ??= this.newClient();
    return this.#client;
  }

  async renew(): Promise<SvidResponse> {
    const csr = createSvidCsr({ spiffeId: this.agentId, privateKey: this.key.privateKey }).pem;
    const svid = await this.client().renewAgent({ csr });
    this.svid = svid;
    this.#client?.close();
    this.#client = undefined;
    return svid;
  }

  async workloadSvid(spiffeId: string): Promise<{ svid: SvidResponse; keyPem: string }> {
    const key = generateP256KeyPair();
    const csr = createSvidCsr({ spiffeId, privateKey: key.privateKey }).pem;
    return { svid: await this.client().issueWorkloadSvid({ spiffeId, csr }), keyPem: privateKeyToPem(key.privateKey) };
  }

  /** Opens the watch stream; messages accumulate in `messages` until `stop()`. */
  watch(since?: string): WatchSession {
    return new WatchSession(this.newClient(), since);
  }

  close(): void {
    this.#client?.close();
  }
}

export class WatchSession {
  readonly messages: { at: number; msg: WatchMessage }[] = [];
  readonly #controller = new AbortController();
  readonly done: Promise<string | undefined>;
  readonly opened: Promise<void>;
  #waiters: (() => void)[] = [];
  readonly #client: WardClient;

  constructor(client: WardClient, since?: string) {
    this.#client = client;
    let onOpen!: () => void;
    this.opened = new Promise((r) => (onOpen = r));
    this.done = client.watch({
      ...(since === undefined ? {} : { since }),
      signal: this.#controller.signal,
      onOpen,
      onMessage: (msg) => {
        this.messages.push({ at: performance.now(), msg });
        for (const w of this.#waiters.splice(0)) w();
      },
    });
    this.done.catch(() => undefined).finally(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves with the first message (from index `from`) that satisfies `pred`; rejects after `timeoutMs`. */
  async waitFor<T extends WatchMessage>(pred: (m: WatchMessage) => m is T, timeoutMs = 5000, from = 0): Promise<{ at: number; msg: T }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.messages.slice(from).find((m) => pred(m.msg));
      if (hit !== undefined) return hit as { at: number; msg: T };
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`watch: no matching message within ${timeoutMs}ms (got ${JSON.stringify(this.messages.slice(from).map((m) => m.msg)).slice(0, 3000)})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<string | undefined> {
    this.#controller.abort();
    const last = await this.done.catch(() => undefined);
    this.#client.close();
    return last;
  }
}

/** A DSSE envelope (in-toto payload) signed with an ECDSA P-256 key, as cosign/in-toto produce. */
export function dsseEnvelope(statement: unknown, privateKey: KeyObject, keyid = 'release'): Record<string, unknown> {
  const payloadType = 'application/vnd.in-toto+json';
  const body = Buffer.from(JSON.stringify(statement));
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${payloadType.length} ${payloadType} ${body.length} `), body]);
  return { payloadType, payload: body.toString('base64'), signatures: [{ keyid, sig: sign('sha256', pae, privateKey).toString('base64') }] };
}

/** `openssl verify` of an SVID chain against the bundle; returns OpenSSL's output (throws if it fails). */
export function opensslVerify(dir: string, bundle: readonly string[], chain: readonly string[]): string {
  const sub = mkdtempSync(join(dir, 'verify-'));
  const ca = join(sub, 'bundle.pem');
  const leaf = join(sub, 'leaf.pem');
  const untrusted = join(sub, 'chain.pem');
  writeFileSync(ca, bundle.join(''));
  writeFileSync(leaf, chain[0] ?? '');
  writeFileSync(untrusted, chain.slice(1).join('') || (chain[0] ?? ''));
  return execFileSync('openssl', ['verify', '-CAfile', ca, '-untrusted', untrusted, '-purpose', 'sslclient', leaf], { encoding: 'utf8' });
}

/** The URI SAN of a PEM certificate, read by OpenSSL. */
export function opensslUriSan(dir: string, pem: string): string {
  const p = join(mkdtempSync(join(dir, 'san-')), 'c.pem');
  writeFileSync(p, pem);
  const out = execFileSync('openssl', ['x509', '-in', p, '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
  return /URI:(\S+)/.exec(out)?.[1] ?? '';
}
