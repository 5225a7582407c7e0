/**
 * `ward demo`: one command that shows Ward protecting a small shop. It starts the control plane
 * and five services behind their agents (in network namespaces when it can), drives the shop's
 * traffic and an attacker's attempts, and tells the story with the policy engine's reasons;
 * then keeps the fleet serving (and the server up for `ward get …`) until Ctrl-C or
 * `--duration`. `--json` prints one summary object at the end (docs/reference/demo.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../../../core/config.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { reportError } from '../../output.js';
import { Fleet } from './fleet.js';
import { TRUST_DOMAIN } from './policies.js';
import { runScenarios, runTraffic, type ScenarioResult, type TrafficStats } from './scenarios.js';

interface DemoFlags {
  duration?: string;
  json?: boolean;
  dataDir?: string;
  netns?: boolean;
}

/** The `--json` summary (its shape is documented in docs/reference/demo.md). */
export interface DemoSummary {
  readonly ok: boolean;
  readonly network: 'netns' | 'loopback';
  readonly trustDomain: string;
  readonly server: { readonly adminUrl: string; readonly agentUrl: string; readonly dataDir: string };
  readonly services: readonly { readonly name: string; readonly spiffeId: string; readonly address: string; readonly port: number; readonly attestor: 'join_token' | 'k8s_psat'; readonly agent: 'sidecar' | 'wrapper' }[];
  readonly scenarios: readonly ScenarioResult[];
  readonly traffic: { readonly requests: number; readonly ok: number; readonly failed: number };
  readonly durationMs: number;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function storyLines(r: ScenarioResult): string[] {
  const mark = r.id === 'forged-identity-header' ? (r.observed === 'deny' ? 'STRIPPED' : 'BELIEVED') : r.observed === 'allow' ? 'ALLOWED ' : 'DENIED  ';
  const verdict = r.ok ? '' : `   <-- expected ${r.expected.toUpperCase()}`;
  const lines = [`${mark} ${r.from} -> ${r.to}: ${r.request}${verdict}`, `        ${r.title}`];
  if (r.detail) lines.push(`        seen: ${r.status === null ? 'no HTTP answer' : `HTTP ${r.status}`}; ${r.detail}`);
  lines.push(`        why (ward explain): ${r.decision}`);
  for (const l of r.explanation.slice(1, 6)) lines.push(`          ${l}`);
  return lines;
}

function summaryTable(results: readonly ScenarioResult[]): string[] {
  const rows = results.map((r) => [r.id, `${r.from} -> ${r.to}`, r.expected, r.observed, r.ok ? 'ok' : 'FAIL']);
  const head = ['scenario', 'who', 'expected', 'observed', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i] as number)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export async function runDemo(flags: DemoFlags, ctx: CliContext): Promise<number> {
  const started = Date.now();
  const json = flags.json === true;
  const say = (line: string): void => {
    if (!json) ctx.io.stdout(`${line}\n`);
    else ctx.io.stderr(`${line}\n`);
  };
  const durationMs = flags.duration === undefined ? undefined : parseDuration(flags.duration, 'duration');
  const ownDir = flags.dataDir === undefined;
  const dataDir = ownDir ? mkdtempSync(join(tmpdir(), 'ward-demo-')) : resolve(flags.dataDir as string);
  let fleet: Fleet | undefined;
  const traffic: TrafficStats = { requests: 0, ok: 0, failed: 0, failures: [] };
  try {
    say('Ward demo: a shop of five services, each behind its own agent');
    fleet = await Fleet.start({ dataDir, ...(flags.netns === false ? { netns: false } : {}), progress: (l) => say(`  ${l}`) });
    if (ctx.signal.aborted) return 130;
    say('');
    say('Traffic, and what an attacker tries:');
    const results = await runScenarios(fleet, (r) => {
      for (const l of storyLines(r)) say(l);
      say('');
    });
    say('Summary:');
    for (const l of summaryTable(results)) say(`  ${l}`);
    say('');
    say(`The control plane stays up: ward get workloads --server ${fleet.server?.adminUrl} (token: ${fleet.adminToken})`);
    say(durationMs === undefined ? 'Shop traffic continues; Ctrl-C stops everything and removes what the demo made.' : `Shop traffic continues for ${flags.duration}.`);
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer = durationMs === undefined ? undefined : setTimeout(() => stop.abort(), Math.max(0, durationMs - (Date.now() - started)));
    const progress = setInterval(() => say(`  traffic: ${traffic.requests} requests, ${traffic.ok} ok, ${traffic.failed} failed`), 10_000);
    await runTraffic(fleet, stop.signal, traffic, 200);
    clearInterval(progress);
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
    const summary: DemoSummary = {
      ok: results.every((r) => r.ok) && traffic.failed === 0,
      network: fleet.mode,
      trustDomain: TRUST_DOMAIN,
      server: { adminUrl: fleet.server?.adminUrl ?? '', agentUrl: fleet.agentApiUrl, dataDir },
      services: [...fleet.services.values()].map((s) => ({ name: s.name, spiffeId: s.spiffeId, address: s.address, port: s.inboundPort, attestor: s.attestor, agent: s.kind === 'vm' ? 'wrapper' as const : 'sidecar' as const })),
      scenarios: results,
      traffic: { requests: traffic.requests, ok: traffic.ok, failed: traffic.failed },
      durationMs: Date.now() - started,
    };
    say(`traffic: ${traffic.requests} requests, ${traffic.ok} ok, ${traffic.failed} failed${traffic.failures.length > 0 ? ` (first: ${traffic.failures[0]})` : ''}`);
    say(summary.ok ? 'Every expected allow and deny happened.' : 'Some scenarios did not go as expected (see above).');
    if (json) ctx.io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    return summary.ok ? 0 : 1;
  } finally {
    say('cleaning up: agents, apps, control plane, network');
    await fleet?.stop();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

export const registerDemo: CommandRegistrar = (program: Command, ctx: CliContext) => {
  program
    .command('demo')
    .description('Run a small shop protected by Ward: control plane, five services with agents, attacks, and the story of each decision')
    .option('--duration <duration>', 'stop after this long (e.g. 60s); default: run until Ctrl-C')
    .option('--json', 'print one JSON summary at the end (progress goes to stderr)')
    .option('--data-dir <dir>', 'keep the control plane\'s data here (default: a temporary directory, removed at the end)')
    .option('--no-netns', 'use loopback ports even when network namespaces are available')
    .action(async (flags: DemoFlags) => {
      try {
        ctx.exitCode = await runDemo(flags, ctx);
      } catch (error) {
        ctx.exitCode = reportError(ctx, flags.json === true ? 'json' : 'text', error);
      }
    });
};
