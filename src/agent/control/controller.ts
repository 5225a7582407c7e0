/**
 * The agent's control-plane client, wired: attest, the watch stream (resumed from the last
 * resource version after any disconnect), one SVID per served workload by CSR with a local key,
 * renewals at half-life with jitter hot-swapped into the {@link TrustState}, policies and peer
 * attributes into the {@link AuthorizerHolder}, revocations, and the event sink.
 *
 * Server unreachable: nothing changes (fail-static) — the last good policy keeps deciding and
 * the current SVIDs keep serving while renewals retry. Once the workload SVID expires without a
 * renewal the agent fails closed: the deny-all authorizer is installed until a new SVID arrives.
 *
 * A watch stream on which nothing arrives (no event, no heartbeat) for `watchIdleTimeoutMs` is
 * presumed dead, dropped and reopened from the last resource version. When the agent's own node
 * SVID expires unrenewed (or the server refuses it) the agent attests again with fresh evidence;
 * a join-token agent cannot (the token is single use) and says so (ERR_CONTROL_JOIN_TOKEN_SPENT,
 * `/readyz` `join_token_spent`) while its workload SVID serves out its lifetime (ADR 0047).
 */
import { X509Certificate } from 'node:crypto';
import { WATCH_IDLE_TIMEOUT } from '../../api/client.js';
import type { Entry, WatchMessage } from '../../api/types.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logging.js';
import { createSvidCsr } from '../../pki/csr.js';
import { generateP256KeyPair, privateKeyToPem } from '../../pki/keys.js';
import type { PolicyAuthorizerOptions } from '../policy-authorizer.js';
import { denyAllAuthorizer, type AuthorizerHolder } from '../proxy/authorizer.js';
import type { TlsMaterial, TrustState } from '../proxy/trust.js';
import type { EventSink } from '../spool/sink.js';
import { ControlError } from './errors.js';
import { ServerEventSink } from './event-sink.js';
import { renewAt, retryDelay } from './rotation.js';
import { ControlSession, type SessionOptions } from './session.js';
import { ControlState } from './state.js';

/** The workload selector an entry carries to be served by `--service <name>`. */
export const SERVICE_SELECTOR_PREFIX = 'ward:service:';

/**
 * Default watch idle timeout: three heartbeats of a server on its default `watchHeartbeat` (15 s),
 * so one or two lost heartbeats do not drop a healthy stream.
 */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 45_000;

/** How often SVID expiry is checked besides the timers (robust to clock jumps, suspended VMs). */
const EXPIRY_CHECK_INTERVAL_MS = 1000;

/** The agent's node identity: usable, being re-attested, or gone for good (spent join token). */
export type AgentIdentityState = 'valid' | 'reattesting' | 'join_token_spent';

export interface ControlPlaneOptions extends SessionOptions {
  /** The service this agent fronts: the entry with selector `ward:service:<name>` names its SPIFFE ID. */
  readonly service?: string;
  /** Or the SPIFFE ID directly (an entry must still let this agent mint it). */
  readonly spiffeId?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Uniform [0,1) randomness for renewal jitter; default Math.random. */
  readonly random?: () => number;
  /** Ports and upstreams the authorizer needs (HTTP ports, outbound targets). */
  readonly authorizerOptions?: PolicyAuthorizerOptions;
  /** How long to wait for the first full state and the first SVID. Default 30 s. */
  readonly startupTimeoutMs?: number;
  /** Cap of the reconnect and retry backoff. Default 5 s. */
  readonly maxBackoffMs?: number;
  /**
   * Drop and reopen the watch stream when nothing (no event, no heartbeat) arrives for this long;
   * also how long without word from the server before `/readyz` says `control_plane_unreachable`.
   * Default {@link DEFAULT_WATCH_IDLE_TIMEOUT_MS}; keep it above the server's `watchHeartbeat`.
   */
  readonly watchIdleTimeoutMs?: number;
}

export interface ControlStatus {
  readonly agentId: string;
  readonly spiffeId: string;
  readonly connected: boolean;
  readonly resourceVersion: number | undefined;
  readonly reconnects: number;
  readonly workloadRenewals: number;
  readonly agentRenewals: number;
  readonly renewalFailures: number;
  readonly refusedMessages: number;
  readonly failedClosed: boolean;
  readonly svidExpiresAt: number;
  /** Expiry of the agent's node SVID (ms). */
  readonly agentSvidExpiresAt: number;
  readonly agentIdentity: AgentIdentityState;
  /** Successful re-attestations after the node SVID was lost. */
  readonly reattestations: number;
  /** Watch streams dropped because nothing arrived within the idle timeout. */
  readonly watchIdleTimeouts: number;
  /** Clock time of the last bytes from the watch stream (or of its opening). */
  readonly lastContactAt: number;
}

function pickEntry(entries: readonly Entry[], o: ControlPlaneOptions): Entry | undefined {
  if (o.spiffeId !== undefined) return entries.find((e) => e.spiffeId === o.spiffeId);
  if (o.service !== undefined) return entries.find((e) => e.selectors.includes(`${SERVICE_SELECTOR_PREFIX}${o.service}`));
  return entries.length === 1 ? entries[0] : undefined;
}

function leafWindow(pem: string): { notBefore: number; notAfter: number; serial: string } {
  const leaf = new X509Certificate(pem);
  return { notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo), serial: normalSerial(leaf.serialNumber) };
}

export class ControlPlane {
  readonly #o: ControlPlaneOptions;
  readonly session: ControlSession;
  readonly state: ControlState;
  readonly #abort = new AbortController();
  #material: TlsMaterial | undefined;
  #serial = '';
  #notAfter = 0;
  #trust: TrustState | undefined;
  #holder: AuthorizerHolder | undefined;
  #connected = false;
  #reconnects = 0;
  #workloadRenewals = 0;
  #agentRenewals = 0;
  #renewalFailures = 0;
  #failedClosed = false;
  readonly #watchIdleMs: number;
  #lastContact = 0;
  #watchIdleTimeouts = 0;
  #identity: AgentIdentityState = 'valid';
  #reattestations = 0;
  /** Bumped when the node SVID is given up: renewal chains of the old one stop. */
  #agentGen = 0;
  #identityWaiters: (() => void)[] = [];
  /** A workload renewal put off while the node identity is not usable; run once it is again. */
  #workloadKick: (() => void) | undefined;
  #tick: NodeJS.Timeout | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();
  #watchLoop: Promise<void> | undefined;
  #syncWaiters: (() => void)[] = [];
  #authorizerOptions: PolicyAuthorizerOptions;

  private constructor(options: ControlPlaneOptions) {
    this.#o = options;
    this.#authorizerOptions = options.authorizerOptions ?? {};
    const idle = options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    if (!Number.isFinite(idle) || idle <= 0) throw new ControlError('ERR_CONTROL_CONFIG', 'watchIdleTimeout: expected a positive duration', { details: { path: 'watchIdleTimeout' } });
    this.#watchIdleMs = idle;
    this.session = new ControlSession(options);
    this.state = new ControlState(() => this.#authorizerOptions);
  }

  /**
   * Attests, syncs the watch stream and obtains the workload SVID. Resolves when the agent can
   * serve (its {@link material} is ready); rejects with a ControlError otherwise.
   *
   * @example
   * const cp = await ControlPlane.connect({ serverUrl, serverBundlePem, trustDomain, attestor: { attestor: 'join_token', token }, service: 'orders', clock, logger });
   * const trust = new TrustState(cp.material); cp.attach(trust, holder);
   */
  static async connect(options: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(options);
    try {
      await cp.#start();
      return cp;
    } catch (error) {
      await cp.stop();
      throw error;
    }
  }

  async #start(): Promise<void> {
    await this.session.attest();
    this.state.bundle = this.session.bundle;
    this.#lastContact = this.#o.clock.now();
    this.#scheduleAgentRenewal();
    this.#tick = setInterval(() => this.checkExpiry(), EXPIRY_CHECK_INTERVAL_MS);
    this.#tick.unref();
    this.#watchLoop = this.#watch();
    const timeout = this.#o.startupTimeoutMs ?? 30_000;
    await this.#until(() => this.state.synced, timeout, 'the first state from the server');
    const entry = pickEntry(this.state.entries, this.#o);
    if (entry === undefined) {
      throw new ControlError('ERR_CONTROL_NO_ENTRY', `no registration entry for ${this.#o.spiffeId ?? (this.#o.service === undefined ? 'this agent' : `service ${this.#o.service} (selector ${SERVICE_SELECTOR_PREFIX}${this.#o.service})`)}`, { details: { entries: this.state.entries.length } });
    }
    await this.#issueWorkload(entry.spiffeId);
  }

  /** The workload's TLS material (SVID chain, key, bundle); ready after {@link connect}. */
  get material(): TlsMaterial {
    if (this.#material === undefined) throw new ControlError('ERR_CONTROL_SVID', 'no workload SVID yet');
    return this.#material;
  }

  get spiffeId(): string {
    return this.#material === undefined ? '' : leafSpiffeId(this.#material.certPem);
  }

  /** Where spooled events go: the server's ingest endpoint. */
  eventSink(): EventSink {
    return new ServerEventSink(this.session, () => this.spiffeId, this.#o.clock);
  }

  /** Connects the proxy's state: from now on renewals swap TLS material and policy changes swap the authorizer. */
  attach(trust: TrustState, holder: AuthorizerHolder, authorizerOptions?: PolicyAuthorizerOptions): void {
    this.#trust = trust;
    this.#holder = holder;
    if (authorizerOptions !== undefined) {
      this.#authorizerOptions = authorizerOptions;
      if (this.state.authorizer !== undefined) this.state.authorizer = this.state.authorizer.withOptions(authorizerOptions);
    }
    trust.setRevoked(this.state.revoked);
    if (this.state.authorizer !== undefined && !this.#failedClosed) holder.set(this.state.authorizer);
  }

  status(): ControlStatus {
    return {
      agentId: this.session.agentId,
      spiffeId: this.spiffeId,
      connected: this.#connected,
      resourceVersion: this.state.resourceVersion,
      reconnects: this.#reconnects,
      workloadRenewals: this.#workloadRenewals,
      agentRenewals: this.#agentRenewals,
      renewalFailures: this.#renewalFailures,
      refusedMessages: this.state.refused,
      failedClosed: this.#failedClosed,
      svidExpiresAt: this.#notAfter,
      agentSvidExpiresAt: this.session.expiresAt,
      agentIdentity: this.#identity,
      reattestations: this.#reattestations,
      watchIdleTimeouts: this.#watchIdleTimeouts,
      lastContactAt: this.#lastContact,
    };
  }

  /**
   * Why the agent should not count as ready, or undefined: it failed closed; its node SVID is gone
   * and its join token spent; or no word from the server (no watch stream) for longer than the
   * watch idle timeout. Traffic is still served (fail-static) in the last two cases.
   */
  notReady(): 'failed_closed' | 'join_token_spent' | 'control_plane_unreachable' | undefined {
    if (this.#failedClosed) return 'failed_closed';
    if (this.#identity === 'join_token_spent') return 'join_token_spent';
    if (!this.#connected && this.#o.clock.now() - this.#lastContact >= this.#watchIdleMs) return 'control_plane_unreachable';
    return undefined;
  }

  /**
   * Fails closed when the workload SVID has expired without a renewal; gives up the node SVID
   * (re-attest, or report a spent join token) once it has expired. Called by timers at expiry and
   * every second.
   */
  checkExpiry(): void {
    const now = this.#o.clock.now();
    if (this.#notAfter !== 0 && this.#notAfter <= now) this.#failClosed('SVID expired without renewal');
    if (this.session.expiresAt !== 0 && this.session.expiresAt <= now) this.#agentSvidUnusable('the agent SVID expired without renewal');
  }

  /** Renews the workload SVID now (tests, `SIGHUP`); the normal schedule continues after it. */
  async renewNow(): Promise<void> {
    await this.#issueWorkload(this.spiffeId);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#tick);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#watchLoop?.catch(() => undefined);
    this.session.close();
  }

  // ---- internals ----

  #later(ms: number, fn: () => void): void {
    if (this.#abort.signal.aborted) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#abort.signal.aborted) fn();
    }, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    t.unref();
    this.#timers.add(t);
  }

  /** Resolves after `ms`, or at once when the control plane stops. */
  #sleep(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ControlError('ERR_CONTROL_ATTEST', `timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        } else this.#syncWaiters.push(check);
      };
      this.#syncWaiters.push(check);
    });
  }

  async #watch(): Promise<void> {
    const signal = this.#abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      // With an expired node SVID the server would refuse the stream: attest again first (or,
      // with a spent join token, stay off the server until restarted with a new one).
      this.checkExpiry();
      if (this.#identity !== 'valid') {
        await this.#identityUsable();
        continue;
      }
      const client = this.session.newClient();
      try {
        await client.watch({
          ...(this.state.resourceVersion === undefined ? {} : { since: String(this.state.resourceVersion) }),
          signal,
          idleTimeoutMs: this.#watchIdleMs,
          onOpen: () => {
            this.#connected = true;
            attempt = 0;
          },
          onActivity: () => {
            this.#lastContact = this.#o.clock.now();
          },
          onMessage: (msg) => this.#onMessage(msg),
        });
      } catch (error) {
        const code = (error as { code?: string }).code;
        // The server no longer knows this agent (revoked): its SVIDs are revoked too.
        if (code === 'ERR_SERVER_AGENT_UNKNOWN') this.#failClosed('the server refuses this agent (revoked)');
        // The server does not take the node SVID (expired by its clock, or a new CA): attest again.
        if (code === 'ERR_SERVER_UNAUTHENTICATED') this.#agentSvidUnusable('the server refused the agent SVID on the watch stream');
        if ((error as { details?: { reason?: unknown } }).details?.reason === WATCH_IDLE_TIMEOUT) {
          this.#watchIdleTimeouts += 1;
          this.#o.logger.warn({ code: 'ERR_CONTROL_WATCH_IDLE', idleTimeoutMs: this.#watchIdleMs }, 'nothing on the watch stream within the idle timeout (no event, no heartbeat); dropping it and reconnecting with the last good state in force');
        } else if (!signal.aborted) this.#o.logger.warn({ code }, 'watch stream failed; keeping the last good state and reconnecting');
      } finally {
        client.close();
      }
      if (signal.aborted) break;
      if (this.#connected) this.#reconnects += 1;
      this.#connected = false;
      await this.#sleep(retryDelay(attempt++, this.#o.maxBackoffMs ?? 5000) / 2);
    }
    this.#connected = false;
  }

  /** Resolves once the node identity is usable again, or at once when the control plane stops. */
  #identityUsable(): Promise<void> {
    const signal = this.#abort.signal;
    if (this.#identity === 'valid' || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      this.#identityWaiters.push(done);
    });
  }

  /**
   * The node SVID expired or the server refuses it: attest again with fresh evidence, retrying
   * with backoff while the server is down. A join-token agent cannot (single use): it reports
   * ERR_CONTROL_JOIN_TOKEN_SPENT once and keeps serving until its workload SVID expires.
   */
  #agentSvidUnusable(why: string): void {
    if (this.#identity !== 'valid' || this.#abort.signal.aborted) return;
    this.#agentGen += 1;
    if (!this.session.reattestable) {
      this.#identity = 'join_token_spent';
      this.#o.logger.error({ code: 'ERR_CONTROL_JOIN_TOKEN_SPENT', agentId: this.session.agentId, why, workloadSvidExpiresAt: new Date(this.#notAfter).toISOString() },
        'the agent SVID is gone and a join token is single use: restart this agent with a new --join-token; serving with the current workload SVID until it expires, then failing closed');
      return;
    }
    this.#identity = 'reattesting';
    this.#o.logger.warn({ agentId: this.session.agentId, why }, 'the agent SVID is no longer usable; attesting again');
    this.#reattest(0);
  }

  #reattest(attempt: number): void {
    this.session.reattest().then(() => {
      if (this.#abort.signal.aborted) return;
      this.#identity = 'valid';
      this.#reattestations += 1;
      this.#o.logger.info({ agentId: this.session.agentId, expiresAt: new Date(this.session.expiresAt).toISOString() }, 'attested again: new agent SVID');
      this.#scheduleAgentRenewal();
      for (const w of this.#identityWaiters.splice(0)) w();
      const kick = this.#workloadKick;
      this.#workloadKick = undefined;
      kick?.();
    }, (error: unknown) => {
      const e = error as { code?: string; details?: { code?: unknown } };
      if (e.details?.code === 'ERR_SERVER_AGENT_UNKNOWN') this.#failClosed('the server refuses this agent (revoked)');
      this.#o.logger.warn({ code: e.code, serverCode: e.details?.code, attempt }, 're-attestation failed; retrying');
      this.#later(retryDelay(attempt, this.#o.maxBackoffMs ?? 5000), () => this.#reattest(attempt + 1));
    });
  }

  #onMessage(msg: WatchMessage): void {
    let change;
    try {
      change = this.state.apply(msg);
    } catch (error) {
      this.state.refused += 1;
      this.#o.logger.warn({ code: (error as { code?: string }).code, type: msg.type }, 'watch message refused; the last good state stays in force');
      return;
    }
    if (change.bundle !== undefined) {
      this.session.bundle = change.bundle;
      if (this.#material !== undefined) {
        const next = { ...this.#material, bundlePem: change.bundle.join('') };
        this.#swap(next);
      }
    }
    if (change.revoked !== undefined) {
      this.#trust?.setRevoked(change.revoked);
      if (this.#serial !== '' && change.revoked.some((s) => normalSerial(s) === this.#serial)) this.#failClosed('own SVID revoked');
    }
    if (change.authorizer !== undefined && this.#holder !== undefined && !this.#failedClosed) this.#holder.set(change.authorizer);
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  #swap(material: TlsMaterial): void {
    if (this.#trust !== undefined) this.#trust.setMaterial(material);
    this.#material = material;
  }

  async #issueWorkload(spiffeId: string): Promise<void> {
    const key = generateP256KeyPair();
    const csr = createSvidCsr({ spiffeId, privateKey: key.privateKey }).pem;
    const svid = await this.session.client().issueWorkloadSvid({ spiffeId, csr });
    if (svid.spiffeId !== spiffeId) throw new ControlError('ERR_CONTROL_SVID', 'the server issued an SVID for another SPIFFE ID');
    const material: TlsMaterial = { certPem: svid.certChain.join(''), keyPem: privateKeyToPem(key.privateKey), bundlePem: (this.state.bundle.length > 0 ? this.state.bundle : this.session.bundle).join('') };
    const window = leafWindow(svid.certChain[0] as string);
    // TrustState checks key match and SPIFFE ID before it takes the material (throws otherwise).
    try {
      this.#swap(material);
    } catch (cause) {
      throw new ControlError('ERR_CONTROL_SVID', 'the workload SVID from the server does not match its key or carries no valid SPIFFE ID', { cause });
    }
    this.#serial = window.serial;
    this.#notAfter = window.notAfter;
    if (this.#failedClosed) {
      this.#failedClosed = false;
      if (this.#holder !== undefined && this.state.authorizer !== undefined) this.#holder.set(this.state.authorizer);
      this.#o.logger.info({ spiffeId }, 'new SVID: serving again');
    }
    this.#scheduleWorkloadRenewal(spiffeId, window.notBefore, window.notAfter, 0);
    this.#later(window.notAfter - this.#o.clock.now(), () => this.checkExpiry());
  }

  #scheduleWorkloadRenewal(spiffeId: string, notBefore: number, notAfter: number, attempt: number): void {
    const random = this.#o.random ?? Math.random;
    const at = attempt === 0 ? renewAt(notBefore, notAfter, random) : this.#o.clock.now() + retryDelay(attempt, this.#o.maxBackoffMs ?? 5000);
    const expected = this.#serial;
    this.#later(at - this.#o.clock.now(), () => this.#renewWorkload(spiffeId, notBefore, notAfter, attempt, expected));
  }

  #renewWorkload(spiffeId: string, notBefore: number, notAfter: number, attempt: number, expected: string): void {
    if (this.#serial !== expected) return; // renewed meanwhile (renewNow)
    if (this.#identity !== 'valid') {
      // Without a usable node SVID the server would refuse: renew once the agent has attested again.
      this.#workloadKick = () => this.#renewWorkload(spiffeId, notBefore, notAfter, attempt, expected);
      return;
    }
    this.#issueWorkload(spiffeId).then(() => {
      this.#workloadRenewals += 1;
    }, (error: unknown) => {
      this.#renewalFailures += 1;
      // Keep trying after expiry too: the agent is failed closed then, and a new SVID reopens it.
      this.#o.logger.warn({ code: (error as { code?: string }).code }, 'workload SVID renewal failed; retrying');
      this.#scheduleWorkloadRenewal(spiffeId, notBefore, notAfter, attempt + 1);
    });
  }

  #scheduleAgentRenewal(attempt = 0): void {
    const random = this.#o.random ?? Math.random;
    const notAfter = this.session.expiresAt;
    const gen = this.#agentGen;
    const at = attempt === 0 ? renewAt(this.session.notBefore, notAfter, random) : this.#o.clock.now() + retryDelay(attempt, this.#o.maxBackoffMs ?? 5000);
    this.#later(at - this.#o.clock.now(), () => {
      if (gen !== this.#agentGen) return; // this SVID was given up (re-attesting)
      this.session.renew().then(() => {
        if (gen !== this.#agentGen) return;
        this.#agentRenewals += 1;
        this.#scheduleAgentRenewal(0);
      }, (error: unknown) => {
        if (gen !== this.#agentGen) return;
        this.#renewalFailures += 1;
        const code = (error as { code?: string }).code;
        this.#o.logger.warn({ code }, 'agent SVID renewal failed; retrying');
        if (code === 'ERR_SERVER_UNAUTHENTICATED') this.#agentSvidUnusable('the server refused the agent SVID on renewal');
        else if (this.#o.clock.now() < notAfter) this.#scheduleAgentRenewal(attempt + 1);
        else this.#agentSvidUnusable('the agent SVID expired without renewal');
      });
    });
  }

  #failClosed(why: string): void {
    if (this.#failedClosed) return;
    this.#failedClosed = true;
    this.#holder?.set(denyAllAuthorizer);
    this.#o.logger.error({ spiffeId: this.spiffeId, why }, 'failing closed: no valid SVID');
  }
}

function leafSpiffeId(certPem: string): string {
  const san = new X509Certificate(certPem).subjectAltName ?? '';
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1] ?? '';
}

/** Hex serial without separators, case or leading zeros. */
function normalSerial(serial: string): string {
  return serial.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+(?=.)/, '');
}
