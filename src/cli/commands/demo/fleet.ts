/**
 * The demo fleet: a control plane (in this process, SQLite in the data dir) and the five shop
 * services, each an ordinary HTTP app behind its own `ward agent` process, each in its own
 * network namespace on a bridge when the machine allows it (else loopback ports). Identities
 * come from real attestation (a join token per host), the images get signed SLSA provenance
 * and a Trivy report. `legacy-inventory` is wrapped with `ward agent run -- …` as on a VM.
 * Used by `ward demo` and by the e2e suite (test/integration/e2e-demo/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WardClient } from '../../../api/client.js';
import { parseServerConfig } from '../../../server/config.js';
import { initServer, startServer, type RunningServer } from '../../../server/server.js';
import { DEMO_REGISTRY, imageDigest, provenanceSigner, trivyReport } from './artifacts.js';
import { DemoKubeApi } from './kube-api.js';
import { DemoError } from './errors.js';
import { NetnsTopology, netnsAvailable, removeStaleTopologies } from './netns.js';
import { SHOP_ROLES, type ShopRole } from './apps/shop.js';
import { attestorOf, DEMO_CLUSTER, demoDocuments, serviceSpiffeId, TRUST_DOMAIN } from './policies.js';

/** Who calls whom (the outbound upstreams each agent offers its app). */
export const CALLS: Readonly<Record<ShopRole, readonly ShopRole[]>> = {
  // web can reach payments on the network too: the lateral-movement attempt goes through it.
  web: ['orders', 'catalog', 'payments'],
  orders: ['payments', 'legacy-inventory'],
  payments: [],
  catalog: [],
  'legacy-inventory': [],
};

export interface ServiceRuntime {
  readonly name: ShopRole;
  readonly spiffeId: string;
  /** Where its agent's mTLS port is reachable from the other services and the driver. */
  readonly address: string;
  readonly inboundPort: number;
  readonly appPort: number;
  /** `pod` services are sidecars (k8s_psat); `vm` ones are wrapped (`ward agent run`, join token). */
  readonly kind: 'pod' | 'vm';
  readonly attestor: 'k8s_psat' | 'join_token';
  readonly spoolDir: string;
  readonly imageDigest: string;
  agent: ChildProcess | undefined;
  app: ChildProcess | undefined;
  /** The agent's own SPIFFE ID (from its ready line), which the server stores events under. */
  agentId: string;
}

export interface FleetOptions {
  readonly dataDir: string;
  /** Try network namespaces (default true); falls back to loopback when unavailable. */
  readonly netns?: boolean;
  /** Workload SVID lifetime (registration entry TTL), default 1h; the e2e suite uses 1m. */
  readonly svidTtl?: string;
  /** Progress lines (human-readable). */
  readonly progress?: (line: string) => void;
  /** The agents' log level (default warn). */
  readonly agentLogLevel?: string;
}

function ext(): string {
  return import.meta.url.endsWith('.ts') ? '.ts' : '.js';
}

/** `node [loader] <ward entry>`: how to start the `ward` CLI as a child, from src (tsx) or dist. */
export function wardCommand(): string[] {
  const entry = fileURLToPath(new URL(`./apps/ward-entry${ext()}`, import.meta.url));
  const loader = ext() === '.ts' ? ['--import', 'tsx'] : [];
  return [process.execPath, ...loader, entry];
}

function shopCommand(role: ShopRole): string[] {
  const entry = fileURLToPath(new URL(`./apps/shop-main${ext()}`, import.meta.url));
  const loader = ext() === '.ts' ? ['--import', 'tsx'] : [];
  return [process.execPath, ...loader, entry, role];
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when `child` prints a line containing `"ready":true`; rejects if it exits first or after `ms`. */
async function waitReady(child: ChildProcess, what: string, ms: number, output: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new DemoError('ERR_DEMO_START', `${what} did not become ready within ${ms} ms: ${output.join('').slice(-800)}`)), ms);
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8');
      if (/"ready":true/.test(buf) || /listening on/.test(buf)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(/"agentId":"([^"]+)"/.exec(buf)?.[1] ?? '');
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new DemoError('ERR_DEMO_START', `${what} exited with ${code}: ${output.join('').slice(-1500)}`));
    });
  });
}

export class Fleet {
  readonly services = new Map<ShopRole, ServiceRuntime>();
  readonly mode: 'netns' | 'loopback';
  readonly topology: NetnsTopology | undefined;
  server: RunningServer | undefined;
  admin!: WardClient;
  adminToken = '';
  readonly #o: FleetOptions;
  readonly #serverHost: string;
  #agentPort = 0;
  readonly #logs = new Map<string, string[]>();
  #stopped = false;
  readonly #provenance = provenanceSigner();
  #kube: DemoKubeApi | undefined;
  readonly #kubeBearer = randomBytes(24).toString('base64url');

  private constructor(options: FleetOptions, topology: NetnsTopology | undefined) {
    this.#o = options;
    this.topology = topology;
    this.mode = topology === undefined ? 'loopback' : 'netns';
    this.#serverHost = topology?.gatewayAddress ?? '127.0.0.1';
  }

  /** Builds the network (or says why not), starts the control plane and every service. Cleans up on failure. */
  static async start(options: FleetOptions): Promise<Fleet> {
    const say = options.progress ?? (() => undefined);
    let topology: NetnsTopology | undefined;
    if (options.netns !== false && (await netnsAvailable())) {
      await removeStaleTopologies();
      say('network: one namespace per host on a bridge');
      topology = await NetnsTopology.create({ hosts: [...SHOP_ROLES] });
    } else {
      say(options.netns === false ? 'network: loopback ports (namespaces disabled)' : 'network: namespaces unavailable (needs root and `ip netns`): falling back to loopback ports');
    }
    const fleet = new Fleet(options, topology);
    try {
      await fleet.#start();
      return fleet;
    } catch (error) {
      await fleet.stop();
      throw error;
    }
  }

  #serverConfig() {
    return parseServerConfig({
      dataDir: this.#o.dataDir,
      trustDomain: TRUST_DOMAIN,
      adminListen: '127.0.0.1:0',
      agentListen: `${this.#serverHost}:${this.#agentPort}`,
      watchHeartbeat: '5s',
      attestors: { join_token: {}, k8s_psat: { clusters: { [DEMO_CLUSTER]: { apiServer: this.#kube!.url, token: this.#kubeBearer, audience: 'ward' } } } },
      provenance: { keys: [{ keyid: 'ward-demo-builder', publicKey: this.#provenance.publicKeyPem }] },
    });
  }

  async #start(): Promise<void> {
    const say = this.#o.progress ?? (() => undefined);
    mkdirSync(this.#o.dataDir, { recursive: true });
    this.#agentPort = await freePort(this.#serverHost);
    this.#kube = await DemoKubeApi.start(this.#kubeBearer);
    say(`kubernetes: a stand-in API server at ${this.#kube.url} (TokenReview, Pods) for the pods' projected tokens`);
    say(`control plane: ward server on ${this.#serverHost}:${this.#agentPort} (SQLite in ${this.#o.dataDir})`);
    const init = await initServer({ config: this.#serverConfig() });
    this.adminToken = init.adminToken;
    await this.startServer();

    say('registering the shop: entries, policies, provenance, scans');
    await this.admin.apply(demoDocuments(this.#o.svidTtl ?? '1h'));
    for (const role of SHOP_ROLES) {
      await this.admin.request('POST', '/v1/provenance', this.#provenance.envelope(role));
      await this.admin.importScan(trivyReport(role, false));
    }

    for (const role of SHOP_ROLES) {
      const netns = this.topology !== undefined;
      this.services.set(role, {
        name: role,
        spiffeId: serviceSpiffeId(role),
        address: netns ? this.topology!.host(role).address : '127.0.0.1',
        inboundPort: netns ? 8443 : await freePort('127.0.0.1'),
        appPort: netns ? 8080 : await freePort('127.0.0.1'),
        kind: role === 'legacy-inventory' ? 'vm' : 'pod',
        attestor: attestorOf(role),
        spoolDir: `${this.#o.dataDir}/spool-${role}`,
        imageDigest: imageDigest(role),
        agent: undefined,
        app: undefined,
        agentId: '',
      });
    }
    // Callees first, so every upstream exists when its caller starts.
    for (const role of ['payments', 'catalog', 'legacy-inventory', 'orders', 'web'] as const) {
      await this.#startService(role);
      say(`${role}: ${this.services.get(role)!.kind === 'vm' ? 'VM (join token), wrapped by `ward agent run`' : 'pod (k8s_psat), sidecar agent'} at ${this.url(role)} as ${serviceSpiffeId(role)}`);
    }
  }

  /** Starts (or restarts) the control plane at the same address. */
  async startServer(): Promise<void> {
    this.server = await startServer({ config: this.#serverConfig() });
    this.admin?.close();
    this.admin = new WardClient({ baseUrl: this.server.adminUrl, token: this.adminToken });
  }

  /** Stops the control plane (agents keep running: fail-static). */
  async stopServer(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  get agentApiUrl(): string {
    return `https://${this.#serverHost}:${this.#agentPort}`;
  }

  url(role: ShopRole): string {
    const s = this.services.get(role)!;
    return `https://${s.address}:${s.inboundPort}`;
  }

  /** Recent output of a service's agent and app processes (for diagnostics). */
  logs(role: ShopRole): string {
    return [...(this.#logs.get(`${role}-agent`) ?? []), ...(this.#logs.get(`${role}-app`) ?? [])].join('').slice(-4000);
  }

  #spawn(role: ShopRole, what: 'agent' | 'app', argv: readonly string[], env: Record<string, string>): ChildProcess {
    const fullEnv = { ...process.env, ...env };
    const child = this.topology !== undefined
      ? this.topology.spawn(role, argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: fullEnv })
      : spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: fullEnv });
    const log: string[] = [];
    this.#logs.set(`${role}-${what}`, log);
    const keep = (d: Buffer): void => {
      log.push(d.toString('utf8'));
      if (log.length > 200) log.splice(0, log.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return child;
  }

  async #startService(role: ShopRole): Promise<void> {
    const s = this.services.get(role)!;
    let attest: string[];
    if (s.attestor === 'join_token') {
      const token = await this.admin.createJoinToken({ attributes: { 'host.name': `vm-${role}`, 'image.digest': s.imageDigest } });
      attest = ['--join-token', token.token];
    } else {
      // The kubelet's projected token, as mounted into the pod.
      const pod = this.#kube!.addPod({ namespace: 'shop', name: `${role}-6d9f7c-${randomBytes(3).toString('hex')}`, serviceAccount: role, image: `${DEMO_REGISTRY}/${role}:1.0.0`, digest: s.imageDigest, labels: { app: role } });
      const file = `${this.#o.dataDir}/token-${role}`;
      writeFileSync(file, await this.#kube!.mintToken(pod), { mode: 0o600 });
      attest = ['--k8s-cluster', DEMO_CLUSTER, '--k8s-token', file];
    }
    const upstreams: string[] = [];
    const outbound: string[] = [];
    let listen = 15001;
    for (const callee of CALLS[role]) {
      const c = this.services.get(callee)!;
      const port = this.topology !== undefined ? listen++ : await freePort('127.0.0.1');
      outbound.push('--outbound', `name=${callee},listen=127.0.0.1:${port},address=${c.address}:${c.inboundPort},id=${c.spiffeId}`);
      upstreams.push(`${callee}=http://127.0.0.1:${port}`);
    }
    const mode = role === 'web' ? 'PERMISSIVE' : 'STRICT';
    const agentFlags = [
      '--server', this.agentApiUrl,
      '--server-bundle', `${this.#o.dataDir}/bundle.pem`,
      '--trust-domain', TRUST_DOMAIN,
      ...attest,
      '--service', role,
      '--inbound', `port=${s.inboundPort},app=${s.appPort},protocol=http,mode=${mode},host=${this.topology !== undefined ? '0.0.0.0' : '127.0.0.1'}`,
      ...outbound,
      '--spool-dir', s.spoolDir,
      '--admin', 'off',
      '--log-level', this.#o.agentLogLevel ?? 'warn',
    ];
    const appEnv = { PORT: String(s.appPort), HOST: '127.0.0.1', UPSTREAMS: upstreams.join(',') };
    if (s.kind === 'vm') {
      // The brownfield way: the agent starts the app as its child; the app's exit ends it.
      s.agent = this.#spawn(role, 'agent', [...wardCommand(), 'agent', 'run', ...agentFlags, '--', ...shopCommand(role)], appEnv);
      s.agentId = await waitReady(s.agent, `${role} (ward agent run)`, 30_000, this.#logs.get(`${role}-agent`)!);
      return;
    }
    s.app = this.#spawn(role, 'app', shopCommand(role), appEnv);
    await waitReady(s.app, `${role} app`, 15_000, this.#logs.get(`${role}-app`)!);
    s.agent = this.#spawn(role, 'agent', [...wardCommand(), 'agent', ...agentFlags], {});
    s.agentId = await waitReady(s.agent, `${role} agent`, 30_000, this.#logs.get(`${role}-agent`)!);
  }

  /** Stops every agent and app (agents flush their spools first); the control plane stays up. */
  async stopServices(): Promise<void> {
    const children = [...this.services.values()].flatMap((s) => [s.agent, s.app]).filter((c): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null);
    await Promise.all(children.map(async (c) => {
      const exited = once(c, 'exit').catch(() => undefined);
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }));
  }

  /** Stops every process, the control plane and the network. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.stopServices();
    this.admin?.close();
    await this.stopServer();
    await this.#kube?.close();
    await this.topology?.destroy();
  }
}
