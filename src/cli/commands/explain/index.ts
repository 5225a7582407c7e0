/**
 * `ward explain`: which policy and rule decide a connection, request, process or file access, and
 * what dry-run policies would have done.
 */
import type { Command } from 'commander';
import { compilePolicies, explain, parseDestinationRef, parseSourceRef, PolicyValidationError, formatIssue, type ExplainQuery } from '../../../policy/index.js';
import { PolicyError } from '../../../policy/errors.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { loadPolicyPaths } from '../policy/files.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function keyValues(items: readonly string[], what: string, json: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new PolicyError('ERR_POLICY_QUERY', `--${what} expects key=value, got ${JSON.stringify(item)}`);
    const key = item.slice(0, eq);
    const raw = item.slice(eq + 1);
    let value: unknown = raw;
    if (json && /^[[{]/.test(raw)) {
      try {
        value = JSON.parse(raw);
      } catch {
        throw new PolicyError('ERR_POLICY_QUERY', `--${what} ${key}: value is not valid JSON`);
      }
    }
    out[key] = value;
  }
  return out;
}

interface ExplainOptions {
  policies: string[];
  workloads: string[];
  from?: string;
  to: string;
  port?: string;
  protocol?: string;
  method?: string;
  path?: string;
  host?: string;
  header: string[];
  claim: string[];
  exec?: string;
  sha256?: string;
  file?: string;
  access?: string;
  output: OutputFormat;
}

export const registerExplain: CommandRegistrar = (program: Command, ctx: CliContext) => {
  program
    .command('explain')
    .description('Explain the decision for a connection, HTTP request, process or file access')
    .requiredOption('--policies <path>', 'policy file or directory (repeatable; Ward, Kubernetes and Istio documents)', collect, [] as string[])
    .option('--workloads <path>', 'workload identity file or directory (repeatable)', collect, [] as string[])
    .option('--from <source>', 'spiffe://..., an IP address, or unauthenticated')
    .requiredOption('--to <destination>', 'destination SPIFFE ID (or IP for egress)')
    .option('--port <n>', 'destination port')
    .option('--protocol <p>', 'TCP, UDP or SCTP', 'TCP')
    .option('--method <m>', 'HTTP method (makes it a request)')
    .option('--path <p>', 'HTTP request path (makes it a request)')
    .option('--host <h>', 'HTTP host')
    .option('--header <k=v>', 'HTTP header (repeatable)', collect, [] as string[])
    .option('--claim <k=v>', 'validated JWT claim (repeatable; JSON values allowed)', collect, [] as string[])
    .option('--exec <path>', 'explain a process execution in --to')
    .option('--sha256 <hex>', 'sha256 of the executable')
    .option('--file <path>', 'explain a file access in --to')
    .option('--access <a>', 'read or write (with --file)', 'read')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action((opts: ExplainOptions) => {
      try {
        const parsed = loadPolicyPaths([...opts.policies, ...opts.workloads], ctx.clock.now());
        if (parsed.issues.length > 0) {
          for (const i of parsed.issues) ctx.io.stderr(`${formatIssue(i)}\n`);
          throw new PolicyValidationError(parsed.issues);
        }
        const set = compilePolicies({ policies: parsed.policies, workloads: parsed.workloads });
        const destination = parseDestinationRef(opts.to);
        let query: ExplainQuery;
        if (opts.exec !== undefined) {
          query = { destination, process: { path: opts.exec, ...(opts.sha256 ? { sha256: opts.sha256.toLowerCase() } : {}) } };
        } else if (opts.file !== undefined) {
          if (opts.access !== 'read' && opts.access !== 'write') throw new PolicyError('ERR_POLICY_QUERY', '--access must be read or write');
          query = { destination, file: { path: opts.file, access: opts.access } };
        } else {
          if (opts.from === undefined || opts.port === undefined) throw new PolicyError('ERR_POLICY_QUERY', 'connections and requests need --from and --port');
          if (!/^[0-9]{1,5}$/.test(opts.port)) throw new PolicyError('ERR_POLICY_QUERY', `--port must be a number, got ${JSON.stringify(opts.port)}`);
          const protocol = opts.protocol?.toUpperCase();
          if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') throw new PolicyError('ERR_POLICY_QUERY', '--protocol must be TCP, UDP or SCTP');
          const isHttp = opts.method !== undefined || opts.path !== undefined || opts.header.length > 0 || opts.claim.length > 0 || opts.host !== undefined;
          query = {
            source: parseSourceRef(opts.from),
            destination,
            port: Number(opts.port),
            protocol,
            ...(isHttp
              ? {
                  http: {
                    method: (opts.method ?? 'GET').toUpperCase(),
                    path: opts.path ?? '/',
                    ...(opts.host ? { host: opts.host } : {}),
                    headers: keyValues(opts.header, 'header', false) as Record<string, string>,
                    ...(opts.claim.length ? { claims: keyValues(opts.claim, 'claim', true) } : {}),
                  },
                }
              : {}),
          };
        }
        const e = explain(set, query);
        printResult(ctx, opts.output, { decision: e.decision, policies: e.policies }, () => e.summary.join('\n'));
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
};
