/**
 * bench/proxy — the mesh topology, side by side in one run:
 *   wrk → client sidecar → mTLS → server sidecar → app
 * built with two Ward agents (static mode, real processes) and with two haproxy processes
 * (mode tcp + ssl verify required; server side mode http with a path ACL for L7), against a
 * direct connection to the app. The app is a haproxy `http-request return` responder, the
 * same for every topology. Prints req/s ratios, p50/p99 added latency and agent peak RSS.
 *
 *   node --import tsx bench/proxy/run.ts [--rounds 3] [--duration 5] [--threads 2] [--connections 32] [--workers 1]
 *
 * The machine is shared: run several rounds and read the medians.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestCa } from '../../test/unit/agent/support/pki.js';
import { startAgentProcess, type AgentProcess } from '../../test/unit/agent/support/process.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    workers: { type: 'string', default: '1' },
    only: { type: 'string' },
    // A new connection (and mTLS handshake) per request: `Connection: close` on every request.
    close: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(opts.rounds);
const WORKERS = Number(opts.workers);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

function startHaproxy(dir: string, name: string, config: string): Promise<ChildProcess> {
  const path = join(dir, `${name}.cfg`);
  writeFileSync(path, config);
  execFileSync('haproxy', ['-c', '-q', '-f', path]);
  const child = spawn('haproxy', ['-db', '-f', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (c: Buffer) => {
    if (/ALERT|WARNING/.test(c.toString())) process.stderr.write(`haproxy ${name}: ${c.toString()}`);
  });
  return new Promise((resolve) => setTimeout(() => resolve(child), 300));
}

interface WrkResult {
  rps: number;
  /** CPU time the two sidecars spent per request, in microseconds (robust to a shared machine). */
  cpuUsPerReq: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : v;
}

function wrk(port: number, path: string): WrkResult {
  const out = execFileSync('wrk', ['-t', opts.threads as string, '-c', opts.connections as string, '-d', `${opts.duration}s`, '--latency', ...(opts.close === true ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}${path}`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p = (pct: string): number => {
    const m = new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? toMs(m[1] as string, m[2] as string) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  return { rps, p50: p('50'), p99: p('99'), non2xx, errors, cpuUsPerReq: requests };
}

const CLOCK_TICKS_PER_SEC = 100;

/** utime + stime of the processes, in microseconds. */
function cpuUs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // process gone
    }
  }
  return (ticks / CLOCK_TICKS_PER_SEC) * 1e6;
}

function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** Current RSS split: anonymous (the process's own: heap, buffers) and file-backed (mostly the node binary's code pages, shared by every node process on the host). */
function rssSplitMb(pid: number | undefined): string {
  if (pid === undefined) return '?';
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
    return `anon ${kb('RssAnon').toFixed(1)} + file ${kb('RssFile').toFixed(1)}`;
  } catch {
    return '?';
  }
}

function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** Compiles src/ to bench/results/dist so the agents run as plain JS (no tsx loader in RSS or CPU). */
function buildAgent(): string[] {
  const out = 'bench/results/dist';
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', out, '--sourceMap', 'false'], { stdio: 'ignore' });
  } catch {
    // Type errors elsewhere in the tree still emit JS; the sanity checks below catch a broken build.
  }
  writeFileSync('bench/results/ward.mjs', "import { main } from './dist/cli/main.js';\nprocess.exitCode = await main(process.argv.slice(2));\n");
  return ['bench/results/ward.mjs'];
}

async function main(): Promise<void> {
  const entry = buildAgent();
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-proxy-'));
  const ca = createTestCa('bench');
  const TD = 'spiffe://bench.example';
  const client = ca.issue([`${TD}/client`]);
  const server = ca.issue([`${TD}/server`]);
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  writeFileSync(join(dir, 'client.pem'), client.certPem + client.keyPem);
  writeFileSync(join(dir, 'server.pem'), server.certPem + server.keyPem);
  const ports = { app: await freePort(), hSrvL4: await freePort(), hCliL4: await freePort(), hSrvL7: await freePort(), hCliL7: await freePort(), aSrvL4: await freePort(), aSrvL7: await freePort() };
  const procs: ChildProcess[] = [];
  const agents: AgentProcess[] = [];
  try {
    const defaults = 'defaults\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n';
    const global = `global\n  maxconn 4000\n  nbthread ${WORKERS}\n`;
    procs.push(await startHaproxy(dir, 'app', `${global}${defaults}frontend app\n  mode http\n  bind 127.0.0.1:${ports.app}\n  http-request return status 200 content-type text/plain string "ok"\n`));
    // haproxy mesh: server sidecars (L4 and L7) and client sidecars (tcp + originate mTLS).
    procs.push(await startHaproxy(dir, 'hsrv', `${global}${defaults}
frontend l4
  mode tcp
  bind 127.0.0.1:${ports.hSrvL4} ssl crt ${dir}/server.pem ca-file ${dir}/ca.pem verify required
  tcp-request content reject unless { ssl_c_used } { ssl_c_verify 0 }
  default_backend app_tcp
frontend l7
  mode http
  bind 127.0.0.1:${ports.hSrvL7} ssl crt ${dir}/server.pem ca-file ${dir}/ca.pem verify required
  acl public path_beg /public/
  http-request deny unless public
  http-request set-header x-forwarded-client-cert "Hash=%[ssl_c_sha1,hex]"
  default_backend app_http
backend app_tcp
  mode tcp
  server a 127.0.0.1:${ports.app}
backend app_http
  mode http
  http-reuse always
  server a 127.0.0.1:${ports.app}
`));
    procs.push(await startHaproxy(dir, 'hcli', `${global}${defaults}
frontend l4
  mode tcp
  bind 127.0.0.1:${ports.hCliL4}
  default_backend srv_l4
frontend l7
  mode tcp
  bind 127.0.0.1:${ports.hCliL7}
  default_backend srv_l7
backend srv_l4
  mode tcp
  server s 127.0.0.1:${ports.hSrvL4} ssl crt ${dir}/client.pem ca-file ${dir}/ca.pem verify required
backend srv_l7
  mode tcp
  server s 127.0.0.1:${ports.hSrvL7} ssl crt ${dir}/client.pem ca-file ${dir}/ca.pem verify required
`));
    // Ward mesh: the same two sidecars.
    for (const side of ['srv', 'cli']) mkdirSync(join(dir, side, 'policy'), { recursive: true });
    writeFileSync(join(dir, 'srv', 'policy', 'p.yaml'), `apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: bench }\nspec:\n  subject: { spiffeIds: ["${TD}/server"] }\n  ingress:\n    - { from: [{ spiffeIds: ["${TD}/client"] }], to: [{ ports: [${ports.aSrvL4}] }] }\n    - { from: [{ spiffeIds: ["${TD}/client"] }], to: [{ ports: [${ports.aSrvL7}], paths: ["/public/*"] }] }\n`);
    writeFileSync(join(dir, 'cli', 'policy', 'p.yaml'), `apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: bench }\nspec:\n  subject: { spiffeIds: ["${TD}/client"] }\n  egress:\n    - { to: [{ spiffeIds: ["${TD}/server"] }], operations: [{ ports: [${ports.aSrvL4}, ${ports.aSrvL7}] }] }\n`);
    writeFileSync(join(dir, 'client.crt'), client.certPem);
    writeFileSync(join(dir, 'client.key'), client.keyPem);
    writeFileSync(join(dir, 'server.crt'), server.certPem);
    writeFileSync(join(dir, 'server.key'), server.keyPem);
    const common = (who: 'client' | 'server'): string[] => ['--svid', join(dir, `${who}.crt`), '--key', join(dir, `${who}.key`), '--bundle', join(dir, 'ca.pem'), '--admin', 'off', '--log-level', 'warn', '--workers', String(WORKERS)];
    // Extra environment for the agents only (experiments, e.g. MALLOC_ARENA_MAX=1).
    const agentEnv = Object.fromEntries((process.env.WARD_BENCH_AGENT_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    if (process.env.WARD_BENCH_PROFILE !== undefined) entry.unshift('--cpu-prof', `--cpu-prof-dir=${process.env.WARD_BENCH_PROFILE}`);
    // Extra node/V8 flags for the agents only (experiments; the figures in README use none unless stated).
    if (process.env.WARD_BENCH_AGENT_FLAGS !== undefined) entry.unshift(...process.env.WARD_BENCH_AGENT_FLAGS.split(/\s+/).filter(Boolean));
    agents.push(await startAgentProcess(['agent', ...common('server'), '--policy-dir', join(dir, 'srv', 'policy'),
      '--inbound', `port=${ports.aSrvL4},app=${ports.app},host=127.0.0.1`,
      '--inbound', `port=${ports.aSrvL7},app=${ports.app},host=127.0.0.1,protocol=http`], 20_000, { entry, env: agentEnv }));
    const cliL4 = await freePort();
    const cliL7 = await freePort();
    agents.push(await startAgentProcess(['agent', ...common('client'), '--policy-dir', join(dir, 'cli', 'policy'),
      '--outbound', `name=l4,listen=${cliL4},address=127.0.0.1:${ports.aSrvL4},id=${TD}/server`,
      '--outbound', `name=l7,listen=${cliL7},address=127.0.0.1:${ports.aSrvL7},id=${TD}/server`], 20_000, { entry, env: agentEnv }));

    const agentPids = (): number[] => agents.flatMap((a) => [a.child.pid as number, ...childPids(a.child.pid)]);
    // haproxy: the two sidecar processes (not the app).
    const sidecarPids = (name: string): number[] => (name.startsWith('ward') ? agentPids() : name.startsWith('haproxy') ? procs.slice(1).map((p) => p.pid as number) : []);
    const targets: [string, number][] = [['direct', ports.app], ['haproxy-l4', ports.hCliL4], ['ward-l4', cliL4], ['haproxy-l7', ports.hCliL7], ['ward-l7', cliL7]];
    // Sanity: every topology answers 200 on /public and the L7 ones deny /admin.
    for (const [name, port] of targets) {
      const ok = wrkOnce(port, '/public/x');
      if (!ok.startsWith('HTTP/1.1 200')) throw new Error(`${name} did not answer 200: ${ok.slice(0, 80)}`);
    }
    for (const [name, port] of [['haproxy-l7', ports.hCliL7], ['ward-l7', cliL7]] as const) {
      if (!wrkOnce(port, '/admin').startsWith('HTTP/1.1 403')) throw new Error(`${name} did not deny /admin`);
    }
    wrk(cliL7, '/public/x'); // warm-up (JIT)
    wrk(cliL4, '/public/x');
    const measured = opts.only === undefined ? targets : targets.filter(([name]) => name === 'direct' || (opts.only as string).split(',').includes(name));
    const results: Record<string, WrkResult[]> = {};
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, port] of measured) {
        const pids = sidecarPids(name);
        const cpuBefore = cpuUs(pids);
        const r = wrk(port, '/public/x');
        r.cpuUsPerReq = r.cpuUsPerReq > 0 ? (cpuUs(pids) - cpuBefore) / r.cpuUsPerReq : NaN;
        (results[name] ??= []).push(r);
        console.log(`round ${round} ${name.padEnd(11)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(2)}ms  p99 ${r.p99.toFixed(2)}ms  sidecar CPU ${r.cpuUsPerReq.toFixed(1)}µs/req  non2xx ${r.non2xx} errors ${r.errors}`);
      }
    }
    const med = (name: string, key: keyof WrkResult): number => median((results[name] ?? []).map((r) => r[key]));
    const rss = agents.flatMap((a) => [a.child.pid, ...childPids(a.child.pid)]).map(peakRssMb);
    console.log(`\nmedians of ${ROUNDS} rounds, ${opts.duration}s each, wrk -t${opts.threads} -c${opts.connections}, ${WORKERS} worker(s)/thread(s) per sidecar`);
    for (const layer of ['l4', 'l7']) {
      const w = `ward-${layer}`;
      const h = `haproxy-${layer}`;
      if (results[w] === undefined || results[h] === undefined) continue;
      console.log(`${layer.toUpperCase()}: ward ${med(w, 'rps').toFixed(0)} req/s vs haproxy ${med(h, 'rps').toFixed(0)} req/s → ${(med(w, 'rps') / med(h, 'rps')).toFixed(2)}× ; direct ${med('direct', 'rps').toFixed(0)} req/s`);
      console.log(`    sidecar CPU per request: ward ${med(w, 'cpuUsPerReq').toFixed(1)}µs haproxy ${med(h, 'cpuUsPerReq').toFixed(1)}µs → haproxy/ward efficiency ${(med(h, 'cpuUsPerReq') / med(w, 'cpuUsPerReq')).toFixed(2)}×`);
      console.log(`    added p50: ward ${(med(w, 'p50') - med('direct', 'p50')).toFixed(2)}ms haproxy ${(med(h, 'p50') - med('direct', 'p50')).toFixed(2)}ms ; added p99: ward ${(med(w, 'p99') - med('direct', 'p99')).toFixed(2)}ms haproxy ${(med(h, 'p99') - med('direct', 'p99')).toFixed(2)}ms ; p99 ratio ${(med(w, 'p99') / med(h, 'p99')).toFixed(2)}×`);
    }
    console.log(`agent peak RSS per process (MB): ${rss.map((x) => x.toFixed(1)).join(', ')} (server side, client side); now: ${agents.map((a) => rssSplitMb(a.child.pid)).join('; ')}`);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    for (const p of procs) p.kill('SIGTERM');
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One raw request (no keep-alive), for the sanity checks. */
function wrkOnce(port: number, path: string): string {
  return execFileSync(process.execPath, ['-e', `
    const s = require('net').connect(${port}, '127.0.0.1', () => s.write('GET ${path} HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'));
    let d = ''; s.on('data', (c) => d += c); s.on('close', () => process.stdout.write(d)); setTimeout(() => { process.stdout.write(d); process.exit(0); }, 3000);
  `], { encoding: 'utf8' });
}

await main();
