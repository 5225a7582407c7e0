/**
 * bench/server: the control plane under a fleet. One server process (SQLite) with 10,000
 * registered workloads; 1,000 simulated agents in this process, each attested with its own join
 * token and holding its own mutual-TLS connection and watch stream. Prints, as medians of 3 rounds:
 *
 * - SVID renewals/s sustained (POST /v1/agent/svids over mTLS, 64 in flight), and the same
 *   issuance done in-process without HTTP, TLS or store, side by side: the ratio is the cost of
 *   the API around the PKI;
 * - time for one policy apply to reach every watching agent (p50/p99/max), against the
 *   round-trip of one small admin request measured just before (the floor);
 * - time for a scan raising vuln.critical to reach the agents that need it (those serving a
 *   workload of the image; no policy here judges peers by attributes) (p50/p99);
 * - worst case: a policy on every workload judging peers `w1*` by attributes (every agent then
 *   needs 1,111 workloads' attributes), and a scan of an image 21 of them run reaching all agents;
 * - the server process's memory (VmRSS) idle with workloads loaded, and with every agent connected.
 *
 *   node --import tsx bench/server/run.ts [--workloads 10000] [--agents 1000] [--seconds 5]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WardClient } from '../../src/api/client.js';
import type { WatchMessage } from '../../src/api/types.js';
import { ManualClock } from '../../src/core/clock.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { createSvidCsr } from '../../src/pki/csr.js';
import { KeySealer } from '../../src/pki/envelope.js';
import { generateP256KeyPair, privateKeyToPem } from '../../src/pki/keys.js';
import { issueX509Svid } from '../../src/pki/svid-issue.js';
import { hashJoinToken, joinTokenId } from '../../src/platforms/join-token/token.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : def;
};
const WORKLOADS = Number(arg('workloads', '10000'));
const AGENTS = Number(arg('agents', '1000'));
const SECONDS = Number(arg('seconds', '5'));
const ROUNDS = 3;
const TD = 'bench.test';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
};
const fmt = (n: number, d = 0): string => n.toFixed(d);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  }));
}

// ---- start the server process ----
const t0 = performance.now();
const child = spawn(process.execPath, ['--import', 'tsx', new URL('./server-process.ts', import.meta.url).pathname, '--workloads', String(WORKLOADS), '--agents', String(AGENTS)], { stdio: ['ignore', 'pipe', 'inherit'] });
const info = await new Promise<{ adminUrl: string; agentUrl: string; token: string; bundle: string[]; serverSpiffeId: string }>((resolve, reject) => {
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    const nl = buf.indexOf('\n');
    if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
  });
  child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
});
const stop = (): void => void child.kill('SIGTERM');
process.on('exit', stop);
console.log(`server up with ${WORKLOADS} workloads in ${fmt((performance.now() - t0) / 1000, 1)} s; RSS ${fmt(rssMiB(child.pid!))} MiB`);
const rssIdle = rssMiB(child.pid!);

const admin = new WardClient({ baseUrl: info.adminUrl, token: info.token });

// ---- attest AGENTS agents ----
interface SimAgent { id: string; key: ReturnType<typeof generateP256KeyPair>; client: WardClient; watch?: AbortController; got: { at: number; msg: WatchMessage }[]; waiters: (() => void)[] }
const agents: SimAgent[] = [];
const tAttest = performance.now();
await pool(Array.from({ length: AGENTS }, (_, i) => i), 16, async (i) => {
  const { token } = await admin.createJoinToken({ attributes: { 'host.name': `host-${i}` } });
  const id = `spiffe://${TD}/ward/agent/join_token/${joinTokenId(hashJoinToken(token))}`;
  const key = generateP256KeyPair();
  const boot = new WardClient({ baseUrl: info.agentUrl, tls: { ca: info.bundle, serverSpiffeId: info.serverSpiffeId } });
  const res = await boot.attest({ attestor: 'join_token', evidence: { token }, csr: createSvidCsr({ spiffeId: id, privateKey: key.privateKey }).pem });
  boot.close();
  const client = new WardClient({ baseUrl: info.agentUrl, tls: { ca: res.bundle, cert: res.svid.certChain.join(''), key: privateKeyToPem(key.privateKey), serverSpiffeId: info.serverSpiffeId } });
  agents[i] = { id, key, client, got: [], waiters: [] };
});
console.log(`attested ${AGENTS} agents in ${fmt((performance.now() - tAttest) / 1000, 1)} s (${fmt(AGENTS / ((performance.now() - tAttest) / 1000))}/s, token + attest each)`);

// ---- connect every watch stream, wait for initial sync ----
const tWatch = performance.now();
await pool(agents, 50, async (a) => {
  a.watch = new AbortController();
  let synced!: () => void;
  const done = new Promise<void>((r) => (synced = r));
  void a.client.watch({
    signal: a.watch.signal,
    onMessage: (msg) => {
      a.got.push({ at: performance.now(), msg });
      if (msg.type === 'attributes' && msg.reset) synced();
      for (const w of a.waiters.splice(0)) w();
    },
  }).catch(() => undefined);
  await done;
});
console.log(`${AGENTS} watch streams synced in ${fmt((performance.now() - tWatch) / 1000, 1)} s (each gets the attributes it needs: its own ${WORKLOADS / AGENTS} workloads)`);
const rssConnected = rssMiB(child.pid!);

function waitAll(pred: (m: WatchMessage) => boolean, from: number[]): Promise<number[]> {
  return waitSome(agents.map((_, i) => i), pred, from);
}

function waitSome(which: readonly number[], pred: (m: WatchMessage) => boolean, from: number[]): Promise<number[]> {
  return Promise.all(which.map((i) => agents[i] as SimAgent).map((a, k) => new Promise<number>((resolve) => {
    const i = which[k] as number;
    const check = (): void => {
      const hit = a.got.slice(from[i]).find((g) => pred(g.msg));
      if (hit) resolve(hit.at);
      else a.waiters.push(check);
    };
    check();
  })));
}

// ---- fan-out: policy apply and scan ----
const policyP50: number[] = [];
const policyP99: number[] = [];
const policyMax: number[] = [];
const floor: number[] = [];
const scanP50: number[] = [];
const scanP99: number[] = [];
let scanAgents = 0;
for (let round = 0; round < ROUNDS; round++) {
  const f0 = performance.now();
  await admin.listPolicies();
  floor.push(performance.now() - f0);
  const from = agents.map((a) => a.got.length);
  const marker = randomBytes(4).toString('hex');
  const start = performance.now();
  const arrived = waitAll((m) => m.type === 'policies' && JSON.stringify(m.policies).includes(marker), from);
  await admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'bench' }, spec: { subject: {}, action: 'ALLOW', ingress: [{ from: [{ spiffeIds: [`spiffe://${TD}/bench/${marker}`] }] }] } }]);
  const lat = (await arrived).map((t) => t - start);
  policyP50.push(pct(lat, 50));
  policyP99.push(pct(lat, 99));
  policyMax.push(Math.max(...lat));

  const from2 = agents.map((a) => a.got.length);
  const digest = `sha256:${(round + 1).toString(16).padStart(64, '0')}`;
  const report = { SchemaVersion: 2, ArtifactName: `bench:${round}`, ArtifactType: 'container_image', Metadata: { RepoDigests: [`bench@${digest}`] }, Results: [{ Target: 'bench', Class: 'os-pkgs', Type: 'debian', Vulnerabilities: [{ VulnerabilityID: `CVE-2026-${1000 + round}`, PkgName: 'libc6', InstalledVersion: '1', Severity: 'CRITICAL' }] }] };
  const s0 = performance.now();
  // Workload i (image i % 100) is served by agent i % AGENTS: the agents owning a workload of the
  // scanned image are the ones that need its attributes (no policy judges peers by attributes here).
  const owners = new Set<number>();
  for (let i = 0; i < WORKLOADS; i++) if (i % 100 === round + 1) owners.add(i % AGENTS);
  scanAgents = owners.size;
  const arrived2 = waitSome([...owners], (m) => m.type === 'attributes' && m.workloads.some((w) => w.attributes['vuln.critical']?.value === 1 && w.attributes['vuln.cves']?.value.toString().includes(`CVE-2026-${1000 + round}`)), from2);
  await admin.importScan(JSON.stringify(report));
  const lat2 = (await arrived2).map((t) => t - s0);
  scanP50.push(pct(lat2, 50));
  scanP99.push(pct(lat2, 99));
}

// ---- worst case: every agent needs the attributes of some peers ----
// A policy for every workload (no subject) judging peers `bench/w1*` by vuln.critical: each agent
// now needs those 1,111 workloads' attributes (a reset to every agent), and a scan of image 1
// (21 of them) must reach all agents.
const fleetFrom = agents.map((a) => a.got.length);
const fl0 = performance.now();
const fleetReset = waitAll((m) => m.type === 'attributes' && m.reset && m.workloads.some((w) => w.spiffeId === `spiffe://${TD}/bench/w1`), fleetFrom);
await admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'fleet-peers' }, spec: { action: 'ALLOW', ingress: [{ from: [{ spiffeIds: [`spiffe://${TD}/bench/w1*`], selector: { matchExpressions: ['vuln.critical == 0'] } }] }] } }]);
const resetLat = (await fleetReset).map((t) => t - fl0);
const fleetP50: number[] = [];
const fleetP99: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const from3 = agents.map((a) => a.got.length);
  const cve = `CVE-2026-${2000 + round}`;
  const digest = `sha256:${(1).toString(16).padStart(64, '0')}`;
  const report = { SchemaVersion: 2, ArtifactName: `bench:fleet${round}`, ArtifactType: 'container_image', Metadata: { RepoDigests: [`bench@${digest}`] }, Results: [{ Target: 'bench', Class: 'os-pkgs', Type: 'debian', Vulnerabilities: [{ VulnerabilityID: cve, PkgName: 'libc6', InstalledVersion: '1', Severity: 'CRITICAL' }] }] };
  const s0 = performance.now();
  const arrived3 = waitAll((m) => m.type === 'attributes' && m.workloads.some((w) => w.spiffeId === `spiffe://${TD}/bench/w1` && w.attributes['vuln.cves']?.value.toString().includes(cve)), from3);
  await admin.importScan(JSON.stringify(report));
  const lat3 = (await arrived3).map((t) => t - s0);
  fleetP50.push(pct(lat3, 50));
  fleetP99.push(pct(lat3, 99));
}

// ---- renewals/s: workload SVID renewals over mTLS vs in-process issuance ----
const renewCsrs = agents.map((a, i) => {
  const spiffeId = `spiffe://${TD}/bench/w${i}`;
  return { a, spiffeId, csr: createSvidCsr({ spiffeId, privateKey: a.key.privateKey }).pem };
});
const clock = new ManualClock(Date.now());
const baseCa = CertificateAuthority.create({ trustDomain: TD, clock, sealer: new KeySealer(randomBytes(32)) });
const baseCsrs = renewCsrs.slice(0, 256).map((r) => ({ spiffeId: r.spiffeId, csr: r.csr }));
// The first SVID of a workload registers it (a change every agent hears about): untimed warm-up.
const w0 = performance.now();
await pool(renewCsrs, 64, async (r) => {
  await r.a.client.issueWorkloadSvid({ spiffeId: r.spiffeId, csr: r.csr });
});
console.log(`first SVID for ${renewCsrs.length} workloads (each registers the workload and fans out) in ${fmt((performance.now() - w0) / 1000, 1)} s`);
const apiRates: number[] = [];
const rawRates: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  const r0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async (_, k) => {
    for (let j = k; performance.now() < end; j += 64) {
      const r = renewCsrs[j % renewCsrs.length]!;
      await r.a.client.issueWorkloadSvid({ spiffeId: r.spiffeId, csr: r.csr });
      n++;
    }
  }));
  apiRates.push(n / ((performance.now() - r0) / 1000));
  let m = 0;
  const rEnd = performance.now() + Math.min(SECONDS, 2) * 1000;
  const q0 = performance.now();
  while (performance.now() < rEnd) {
    const c = baseCsrs[m % baseCsrs.length]!;
    issueX509Svid({ ca: baseCa, csr: c.csr, spiffeId: c.spiffeId, clock });
    m++;
  }
  rawRates.push(m / ((performance.now() - q0) / 1000));
}
const rssAfter = rssMiB(child.pid!);

console.log('');
console.log(`bench/server: ${WORKLOADS} workloads, ${AGENTS} agents (mTLS, one watch stream each), SQLite, medians of ${ROUNDS}`);
console.log(`  SVID renewals/s over the API   ${fmt(median(apiRates))}   (in-process issuance ${fmt(median(rawRates))}/s; ratio ${fmt(median(apiRates) / median(rawRates), 3)})`);
console.log(`  policy apply -> all agents     p50 ${fmt(median(policyP50))} ms  p99 ${fmt(median(policyP99))} ms  max ${fmt(median(policyMax))} ms   (one admin GET round trip: ${fmt(median(floor), 1)} ms; p99/floor ${fmt(median(policyP99) / median(floor), 1)}x)`);
console.log(`  scan vuln.critical -> the agents of that image's workloads (${scanAgents} agents)   p50 ${fmt(median(scanP50))} ms  p99 ${fmt(median(scanP99))} ms`);
console.log(`  scan -> all ${AGENTS} agents (every agent's policy judges peers w1* by vuln.critical)   p50 ${fmt(median(fleetP50))} ms  p99 ${fmt(median(fleetP99))} ms   (that policy's apply -> every agent's new table: p50 ${fmt(pct(resetLat, 50))} ms p99 ${fmt(pct(resetLat, 99))} ms)`);
console.log(`  server RSS                     ${fmt(rssIdle)} MiB idle with workloads, ${fmt(rssConnected)} MiB with all agents connected, ${fmt(rssAfter)} MiB after the renewal runs`);
console.log(`  rounds: renewals/s ${apiRates.map((x) => fmt(x)).join(', ')}; policy p99 ${policyP99.map((x) => fmt(x)).join(', ')} ms; scan p99 ${scanP99.map((x) => fmt(x)).join(', ')} ms; fleet scan p99 ${fleetP99.map((x) => fmt(x)).join(', ')} ms`);

for (const a of agents) {
  a.watch?.abort();
  a.client.close();
}
admin.close();
stop();
