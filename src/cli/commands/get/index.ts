/**
 * `ward get workloads|workload <id>|entries|policies|agents|audit [-o text|json|yaml|wide]`:
 * reads from a running server's admin API.
 */
import type { Command } from 'commander';
import type { AgentInfo, AuditRecord, Entry, PolicyRecord, Workload } from '../../../api/types.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { withAdminClient, withConnection, type ConnectionOptions } from './connection.js';
import { formatValue, isoTime, table } from './table.js';

type Opts = ConnectionOptions & { output: OutputFormat };

function workloadsText(items: readonly Workload[], wide: boolean): string {
  const headers = wide ? ['SPIFFE ID', 'AGENT', 'IMAGE', 'VULN.CRITICAL', 'ATTRIBUTES', 'LAST SEEN'] : ['SPIFFE ID', 'IMAGE', 'VULN.CRITICAL', 'ATTRIBUTES'];
  return table(headers, items.map((w) => {
    const crit = w.attributes['vuln.critical'];
    const base = [w.spiffeId, w.imageDigest === null ? '-' : w.imageDigest.slice(0, 19), crit === undefined ? '-' : formatValue(crit.value), String(Object.keys(w.attributes).length)];
    return wide ? [w.spiffeId, w.agentId, w.imageDigest ?? '-', base[2]!, base[3]!, isoTime(w.lastSeenAt)] : base;
  }));
}

function workloadText(w: Workload): string {
  const rows = Object.entries(w.attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, a]) => [k, formatValue(a.value), a.source, isoTime(a.observedAt)]);
  return `SPIFFE ID: ${w.spiffeId}\nAgent:     ${w.agentId}\nImage:     ${w.imageDigest ?? '-'}\n\n${table(['ATTRIBUTE', 'VALUE', 'SOURCE', 'OBSERVED'], rows)}`;
}

function entriesText(items: readonly Entry[], wide: boolean): string {
  return table(wide ? ['NAME', 'SPIFFE ID', 'PARENT', 'NODE SELECTORS', 'SELECTORS', 'TTL', 'REVISION'] : ['NAME', 'SPIFFE ID', 'PARENT', 'NODE SELECTORS'],
    items.map((e) => {
      const base = [e.id, e.spiffeId, e.parentId, e.nodeSelectors.join(',') || '-'];
      return wide ? [...base, e.selectors.join(',') || '-', `${e.ttlSeconds}s`, String(e.revision)] : base;
    }));
}

function policiesText(items: readonly PolicyRecord[], wide: boolean): string {
  return table(wide ? ['NAME', 'KIND', 'MODE', 'VERSION'] : ['NAME', 'KIND', 'VERSION'], items.map((p) => {
    const mode = String((p.policy as { mode?: unknown } | null)?.mode ?? '-');
    return wide ? [p.name, p.kind, mode, String(p.version)] : [p.name, p.kind, String(p.version)];
  }));
}

function agentsText(items: readonly AgentInfo[], wide: boolean): string {
  return table(wide ? ['AGENT', 'ATTESTOR', 'REVOKED', 'SELECTORS', 'FIRST SEEN', 'LAST SEEN'] : ['AGENT', 'ATTESTOR', 'REVOKED', 'LAST SEEN'], items.map((a) =>
    wide ? [a.agentId, a.attestor, String(a.revoked), a.selectors.join(','), isoTime(a.firstSeenAt), isoTime(a.lastSeenAt)] : [a.agentId, a.attestor, String(a.revoked), isoTime(a.lastSeenAt)]));
}

function auditText(items: readonly AuditRecord[], wide: boolean): string {
  return table(wide ? ['ID', 'TIME', 'ACTOR', 'ACTION', 'RESOURCE', 'OUTCOME', 'BEFORE', 'AFTER'] : ['ID', 'TIME', 'ACTOR', 'ACTION', 'RESOURCE', 'OUTCOME'], items.map((r) => {
    const outcome = r.code === undefined ? r.outcome : `${r.outcome} ${r.code}`;
    const base = [String(r.id), isoTime(r.at), r.actor, r.action, r.resource, outcome];
    return wide ? [...base, JSON.stringify(r.before ?? null).slice(0, 80), JSON.stringify(r.after ?? null).slice(0, 80)] : base;
  }));
}

function reader(ctx: CliContext, noun: Command, name: string, description: string, run: (opts: Opts, args: string[]) => Promise<{ value: unknown; text: (wide: boolean) => string }>, args = ''): void {
  const cmd = noun.command(`${name}${args === '' ? '' : ` ${args}`}`).description(description)
    .option('-o, --output <format>', 'text, wide, json or yaml', parseOutputFormat, 'text' as OutputFormat);
  withConnection(cmd).action(async (...params: unknown[]) => {
    const positional = params.slice(0, -2).filter((p): p is string => typeof p === 'string');
    const opts = params[params.length - 2] as Opts;
    try {
      const out = await run(opts, positional);
      printResult(ctx, opts.output, out.value, () => out.text(opts.output === 'wide'));
    } catch (error) {
      ctx.exitCode = reportError(ctx, opts.output, error);
    }
  });
}

export const registerGet: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('get').description('Show workloads, entries, policies, agents or the audit log of a running server');
  reader(ctx, noun, 'workloads', 'List workloads with their attribute counts', (o) => withAdminClient(ctx, o, async (c) => {
    const { items } = await c.listWorkloads();
    return { value: { items }, text: (wide) => workloadsText(items, wide) };
  }));
  reader(ctx, noun, 'workload', 'One workload with every attribute, its source and time', (o, [id]) => withAdminClient(ctx, o, async (c) => {
    const w = await c.getWorkload(id as string);
    return { value: w, text: () => workloadText(w) };
  }), '<spiffe-id>');
  reader(ctx, noun, 'entries', 'List registration entries', (o) => withAdminClient(ctx, o, async (c) => {
    const { items } = await c.listEntries();
    return { value: { items }, text: (wide) => entriesText(items, wide) };
  }));
  reader(ctx, noun, 'policies', 'List policies', (o) => withAdminClient(ctx, o, async (c) => {
    const { items } = await c.listPolicies();
    return { value: { items }, text: (wide) => policiesText(items, wide) };
  }));
  reader(ctx, noun, 'agents', 'List attested agents', (o) => withAdminClient(ctx, o, async (c) => {
    const { items } = await c.listAgents();
    return { value: { items }, text: (wide) => agentsText(items, wide) };
  }));
  reader(ctx, noun, 'audit', 'Read the audit log (oldest first; --after to page)', (o) => withAdminClient(ctx, o, async (c) => {
    const opts = o as Opts & { limit?: string; after?: string };
    const { items } = await c.listAudit({ limit: Number(opts.limit ?? 100), ...(opts.after === undefined ? {} : { afterId: Number(opts.after) }) });
    return { value: { items }, text: (wide) => auditText(items, wide) };
  }));
  const audit = noun.commands.find((c) => c.name() === 'audit');
  audit?.option('--limit <n>', 'records to show (1-1000)', '100').option('--after <id>', 'show records after this id');
};
