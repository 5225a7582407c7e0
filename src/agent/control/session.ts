/**
 * The agent's node identity with the control plane: attest once (evidence + CSR for the
 * predicted agent ID), then a mutual-TLS client authenticated by the node SVID, renewed by CSR
 * with a fresh local key. Private keys are generated here and never leave the process.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { WardClient } from '../../api/client.js';
import { ServerReplyError } from '../../api/errors.js';
import type { SvidResponse } from '../../api/types.js';
import { createSvidCsr } from '../../pki/csr.js';
import { generateP256KeyPair, privateKeyToPem } from '../../pki/keys.js';
import { collectEvidence, type AttestorChoice, type CollectedEvidence } from './evidence.js';
import { ControlError } from './errors.js';

export interface SessionOptions {
  /** `https://host:port` of the server's agent API. */
  readonly serverUrl: string;
  /** PEM CA certificates the server's certificate must chain to (`<data-dir>/bundle.pem`). */
  readonly serverBundlePem: string;
  readonly trustDomain: string;
  readonly attestor: AttestorChoice;
  /** Request timeout of calls to the server (not the watch stream). */
  readonly timeoutMs?: number;
}

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? [];
}

/** The trust domain named by the first CA certificate's `spiffe://<td>` URI SAN, if any. */
export function trustDomainOfBundle(bundlePem: string): string | undefined {
  for (const pem of pemBlocks(bundlePem)) {
    try {
      const san = new X509Certificate(pem).subjectAltName ?? '';
      const m = /URI:spiffe:\/\/([a-z0-9._-]+)(?:,|$|\/)/.exec(san);
      if (m) return m[1];
    } catch {
      // not a certificate: no trust domain from it
    }
  }
  return undefined;
}

export class ControlSession {
  readonly #o: SessionOptions;
  #agentId = '';
  #svid: SvidResponse | undefined;
  #keyPem = '';
  #bundle: readonly string[] = [];
  #client: WardClient | undefined;

  constructor(options: SessionOptions) {
    if (!/^https:\/\//.test(options.serverUrl)) throw new ControlError('ERR_CONTROL_CONFIG', 'the server URL must be https:// (the agent API is always TLS)', { details: { path: 'server' } });
    if (pemBlocks(options.serverBundlePem).length === 0) throw new ControlError('ERR_CONTROL_CONFIG', 'the server bundle holds no PEM certificate', { details: { path: 'serverBundle' } });
    this.#o = options;
    this.#bundle = pemBlocks(options.serverBundlePem);
  }

  get agentId(): string {
    return this.#agentId;
  }

  get serverSpiffeId(): string {
    return `spiffe://${this.#o.trustDomain}/ward/server`;
  }

  /** The trust bundle as the server last sent it (PEM certificates). */
  get bundle(): readonly string[] {
    return this.#bundle;
  }

  set bundle(next: readonly string[]) {
    this.#bundle = next;
  }

  /** Expiry of the node SVID (ms), or 0 before attestation. */
  get expiresAt(): number {
    return this.#svid?.expiresAt ?? 0;
  }

  get notBefore(): number {
    return this.#svid === undefined ? 0 : Date.parse(new X509Certificate(this.#svid.certChain[0] as string).validFrom);
  }

  /**
   * Whether the agent can attest again once its node SVID is gone: every attestor whose evidence
   * the platform keeps fresh (a projected token the kubelet rotates), not a single-use join token.
   */
  get reattestable(): boolean {
    return this.#o.attestor.attestor !== 'join_token';
  }

  /** Attests (consumes single-use evidence) and takes the node SVID and the trust bundle. */
  async attest(): Promise<void> {
    const collected = await collectEvidence(this.#o.attestor, this.#o.trustDomain);
    await this.#attestWith(collected);
  }

  /**
   * Attests again with fresh evidence after the node SVID expired or was refused, as the same
   * agent: evidence naming another agent ID (another pod) is refused before anything is sent.
   */
  async reattest(): Promise<void> {
    if (!this.reattestable) throw new ControlError('ERR_CONTROL_JOIN_TOKEN_SPENT', 'a join token is single use: this agent cannot attest again; restart it with a new --join-token');
    const collected = await collectEvidence(this.#o.attestor, this.#o.trustDomain);
    if (collected.agentId !== this.#agentId) {
      throw new ControlError('ERR_CONTROL_ATTEST', 'the fresh evidence names another agent than this one (another pod?); restart the agent', { details: { agentId: this.#agentId, evidenceAgentId: collected.agentId } });
    }
    await this.#attestWith(collected);
  }

  async #attestWith(collected: CollectedEvidence): Promise<void> {
    const key = generateP256KeyPair();
    const csr = createSvidCsr({ spiffeId: collected.agentId, privateKey: key.privateKey }).pem;
    const boot = new WardClient({ baseUrl: this.#o.serverUrl, timeoutMs: this.#o.timeoutMs ?? 10_000, tls: { ca: [...this.#bundle], serverSpiffeId: this.serverSpiffeId } });
    try {
      const res = await boot.attest({ attestor: collected.attestor, evidence: collected.evidence, csr });
      if (res.agentId !== collected.agentId || res.svid.spiffeId !== collected.agentId) throw new ControlError('ERR_CONTROL_SVID', 'the server issued an agent SVID for another ID than the one requested');
      this.#agentId = res.agentId;
      this.#take(res.svid, privateKeyToPem(key.privateKey));
      if (res.bundle.length > 0) this.#bundle = res.bundle;
    } catch (error) {
      if (error instanceof ControlError) throw error;
      const code = error instanceof ServerReplyError ? error.code : (error as { code?: string }).code;
      throw new ControlError('ERR_CONTROL_ATTEST', `attestation with ${collected.attestor} failed: ${(error as Error).message}`, { cause: error, details: { code } });
    } finally {
      boot.close();
    }
  }

  /** Renews the node SVID with a fresh key; the old client keeps serving calls in flight. */
  async renew(): Promise<void> {
    const key = generateP256KeyPair();
    const csr = createSvidCsr({ spiffeId: this.#agentId, privateKey: key.privateKey }).pem;
    const svid = await this.client().renewAgent({ csr });
    if (svid.spiffeId !== this.#agentId) throw new ControlError('ERR_CONTROL_SVID', 'the server renewed the agent SVID for another ID');
    this.#take(svid, privateKeyToPem(key.privateKey));
  }

  #take(svid: SvidResponse, keyPem: string): void {
    const leaf = new X509Certificate(svid.certChain[0] ?? '');
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) {
      throw new ControlError('ERR_CONTROL_SVID', 'the server returned an agent SVID for another key');
    }
    this.#svid = svid;
    this.#keyPem = keyPem;
    const old = this.#client;
    this.#client = undefined;
    // Let calls in flight on the old client finish; new calls use the new SVID.
    if (old !== undefined) setTimeout(() => old.close(), 30_000).unref();
  }

  /** The shared mutual-TLS client with the current node SVID. */
  client(): WardClient {
    if (this.#svid === undefined) throw new ControlError('ERR_CONTROL_ATTEST', 'the agent has not attested yet');
    this.#client ??= this.newClient();
    return this.#client;
  }

  /** A separate mutual-TLS client (the watch stream holds its own connection). */
  newClient(timeoutMs = this.#o.timeoutMs ?? 10_000): WardClient {
    if (this.#svid === undefined) throw new ControlError('ERR_CONTROL_ATTEST', 'the agent has not attested yet');
    return new WardClient({
      baseUrl: this.#o.serverUrl,
      timeoutMs,
      tls: { ca: [...this.#bundle], cert: this.#svid.certChain.join(''), key: this.#keyPem, serverSpiffeId: this.serverSpiffeId },
    });
  }

  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
