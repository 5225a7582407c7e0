/**
 * `ward server`: the one wiring function. Reads top to bottom as the order things are built:
 * master key → store → CA → attestors → registry view → watch hub → server certificate →
 * admin API → agent API. Returns the running handles; `close()` stops them in reverse order.
 * Tests call {@link startServer} directly.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Server as HttpsServer } from 'node:https';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logging.js';
import { CertificateAuthority } from '../pki/ca.js';
import { bundleToPem } from '../pki/bundle.js';
import { KeySealer } from '../pki/envelope.js';
import { createMasterKeyProvider } from '../pki/keystore/index.js';
import type { AttestationState } from '../platforms/attestor.js';
import { BUILTIN_ATTESTORS, createAttestorRegistry } from '../platforms/registry.js';
import { openStore, type Store } from '../store/index.js';
import { createApp, type AppOptions } from './app.js';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { ServerError } from './errors.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import type { ScanPort } from './ports.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerAgentRoutes } from './routes/agent.js';
import { createCaPort, issueServerCertificate, serverSpiffeId } from './services/ca.js';
import { createPolicyPort } from './services/policies.js';
import { RegistryView } from './services/registry-view.js';
import { startPruneJob, type PruneJob } from './services/maintenance.js';
import { createProvenancePort, createScanPort } from './services/scans.js';
import { WatchHub } from './services/watch-hub.js';
import { newAdminToken } from './auth/tokens.js';

export interface ServerDeps {
  readonly config: ServerConfig;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Scan-report parser; default the built-in Trivy/Grype/CycloneDX parsers. */
  readonly scans?: ScanPort;
  /**
   * One-time attestation state; default the store's (shared by replicas, kept across
   * restarts). Tests may inject another implementation of the same contract.
   */
  readonly attestation?: AttestationState;
}

export interface RunningServer {
  /** `http://host:port` (or https with `adminTls`) of the admin API. */
  readonly adminUrl: string;
  /** `https://host:port` of the agent API. */
  readonly agentUrl: string;
  /** PEM CA certificates agents and the CLI trust. */
  readonly bundle: readonly string[];
  /** The SPIFFE ID in the server's certificate (agents check it instead of a host name). */
  readonly serverSpiffeId: string;
  readonly context: ServerContext;
  /** The store maintenance job (`runOnce` for tests and operators). */
  readonly maintenance: PruneJob;
  /** Stops the listeners, the watch streams and the store; idempotent. */
  close(): Promise<void>;
}

const NODE_ATTESTORS: ReadonlySet<string> = new Set(Object.values(BUILTIN_ATTESTORS).filter((p) => p.kind === 'node').map((p) => p.name));

async function loadSealer(config: ServerConfig, env: Readonly<Record<string, string | undefined>>, create: boolean): Promise<KeySealer> {
  const provider = createMasterKeyProvider(config.masterKey.provider, { env, path: config.masterKey.path });
  const key = create ? await provider.ensure() : await provider.load();
  try {
    return new KeySealer(key);
  } finally {
    key.fill(0);
  }
}

export interface InitResult {
  readonly trustDomain: string;
  /** The bootstrap admin token: printed once, stored only as a hash. */
  readonly adminToken: string;
  readonly bundlePem: string;
  readonly bundlePath: string;
}

/**
 * `ward server init`: creates the master key (file provider), the store and its schema, the CA
 * (sealed, in the store so every replica shares it) and the bootstrap admin token. Refuses a
 * store that already holds a CA.
 */
export async function initServer(deps: ServerDeps): Promise<InitResult> {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const sealer = await loadSealer(config, deps.env ?? {}, true);
  const store = await openStore(config.storeUrl, { clock, logger: deps.logger ?? silentLogger });
  try {
    if ((await store.ca.get()) !== null) throw new ServerError('ERR_SERVER_DATA_DIR', 'this store is already initialised (it holds a CA)');
    const ca = CertificateAuthority.create({ trustDomain: config.trustDomain, clock, sealer, defaultSvidTtlMs: config.svidTtlMs, maxSvidTtlMs: Math.max(config.svidTtlMs, config.agentSvidTtlMs, 24 * 3_600_000) });
    const adminToken = newAdminToken();
    await store.transaction(async (tx) => {
      await tx.ca.put(ca.toJSON(), null);
      await tx.adminTokens.create({ token: adminToken, name: 'bootstrap', role: 'admin' });
      await tx.audit.append({ actor: 'system', action: 'server.init', resource: `trust-domain/${config.trustDomain}`, after: { trustDomain: config.trustDomain, adminToken: 'bootstrap' } });
    });
    const bundlePem = bundleToPem(ca.trustBundle());
    const bundlePath = `${config.dataDir.replace(/\/+$/, '')}/bundle.pem`;
    await writeFile(bundlePath, bundlePem, { mode: 0o644 });
    return { trustDomain: config.trustDomain, adminToken, bundlePem, bundlePath };
  } finally {
    await store.close();
  }
}

/** The admin API's fastify instance (not listening); tests enumerate its routes. */
export function buildAdminApi(ctx: ServerContext, options: AppOptions = {}): FastifyInstance {
  const app = createApp(ctx, options);
  app.get('/openapi.json', async () => OPENAPI_DOCUMENT);
  registerAdminRoutes(app, ctx);
  return app;
}

/** The agent API's fastify instance (not listening; give it `https` to serve agents). */
export function buildAgentApi(ctx: ServerContext, options: AppOptions = {}): FastifyInstance {
  const app = createApp(ctx, options);
  app.get('/openapi.json', async () => OPENAPI_DOCUMENT);
  registerAgentRoutes(app, ctx);
  return app;
}

/** Builds and starts the control plane. */
export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silentLogger;
  const cleanups: (() => Promise<void> | void)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (error) {
        logger.warn({ err: error }, 'server: error while stopping');
      }
    }
  };
  try {
    // 1. master key and store
    const sealer = await loadSealer(config, deps.env ?? {}, false);
    const store: Store = await openStore(config.storeUrl, { clock, logger });
    cleanups.push(() => store.close());

    // 2. CA, shared through the store by every replica
    const caState = await store.ca.get();
    if (caState === null) throw new ServerError('ERR_SERVER_DATA_DIR', 'the store holds no CA: run `ward server init` first');
    const ca = CertificateAuthority.fromJSON(caState.sealed, sealer);
    if (ca.trustDomain !== config.trustDomain) throw new ServerError('ERR_SERVER_DATA_DIR', `the store's CA is for trust domain ${ca.trustDomain}, not ${config.trustDomain}`);
    const caPort = createCaPort(ca, clock);

    // 3. attestors, registry view, watch hub
    const attestors = createAttestorRegistry(config.attestors);
    const view = new RegistryView(store, caPort, config.trustDomain, NODE_ATTESTORS);
    await view.load();
    const hub = new WatchHub(view);
    cleanups.push(() => hub.closeAll());
    const ctx: ServerContext = {
      config, clock, logger, store, ca: caPort, view, hub, attestors, nodeAttestors: NODE_ATTESTORS,
      attestation: deps.attestation ?? store.attestation,
      policies: createPolicyPort(() => clock.now()),
      scans: deps.scans ?? createScanPort(config.scanBodyLimitBytes),
      provenance: createProvenancePort(config.provenance),
    };
    // Changes committed by this replica or (PostgreSQL) any other reach the view, then the agents.
    const unsubscribe = await store.onChange(() => {
      view.refresh().then(() => hub.changed(), (error: unknown) => logger.error({ err: error }, 'server: registry refresh failed'));
    });
    cleanups.push(unsubscribe);

    // Store maintenance: one replica per interval prunes expired state (services/maintenance.ts).
    const maintenance = startPruneJob({ store, clock, logger, config });
    cleanups.push(() => maintenance.stop());

    // 4. the server's own certificate, re-issued at half-life
    const ttl = Math.min(config.agentSvidTtlMs, 24 * 3_600_000);
    let tls = issueServerCertificate(ca, clock, ttl);
    const secure = (): { key: string; cert: string; ca: string[] } => ({ key: tls.keyPem, cert: tls.certPem, ca: [...caPort.bundle()] });
    const listeners: FastifyInstance[] = [];
    const rotate = setInterval(() => {
      tls = issueServerCertificate(ca, clock, ttl);
      for (const app of listeners) {
        const server = app.server as Partial<HttpsServer>;
        if (typeof server.setSecureContext === 'function') server.setSecureContext(secure());
      }
    }, Math.max(1000, Math.floor(ttl / 2)));
    rotate.unref();
    cleanups.push(() => clearInterval(rotate));

    // 5. admin API
    const admin = buildAdminApi(ctx, config.adminTls ? { https: secure() } : {});
    await admin.listen({ host: config.adminListen.host, port: config.adminListen.port });
    listeners.push(admin);
    cleanups.push(() => admin.close());

    // 6. agent API (mutual TLS)
    const agentApi = buildAgentApi(ctx, { https: secure() });
    await agentApi.listen({ host: config.agentListen.host, port: config.agentListen.port });
    listeners.push(agentApi);
    // Watch streams never end by themselves: end them before waiting for connections to drain.
    cleanups.push(async () => {
      hub.closeAll();
      await agentApi.close();
    });

    const url = (app: FastifyInstance, scheme: string): string => {
      const addr = app.server.address();
      if (addr === null || typeof addr === 'string') return `${scheme}://${String(addr)}`;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
      return `${scheme}://${host}:${addr.port}`;
    };
    logger.info({ trustDomain: config.trustDomain, admin: url(admin, config.adminTls ? 'https' : 'http'), agent: url(agentApi, 'https') }, 'ward server started');
    let closing: Promise<void> | undefined;
    return {
      adminUrl: url(admin, config.adminTls ? 'https' : 'http'),
      agentUrl: url(agentApi, 'https'),
      bundle: caPort.bundle(),
      serverSpiffeId: serverSpiffeId(config.trustDomain),
      context: ctx,
      maintenance,
      close: () => (closing ??= closeAll()),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
