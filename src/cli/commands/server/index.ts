/**
 * `ward server init|start`: the control plane. `init` creates the master key, the store, the CA
 * and the bootstrap admin token (printed once); `start` runs until SIGINT/SIGTERM.
 * Options may also come from a YAML file (`--config`), flags winning; see docs/reference/server.md.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { configError } from '../../../core/config.js';
import { createLogger } from '../../../core/logging.js';
import { parseServerConfig, type RawServerOptions } from '../../../server/config.js';
import { initServer, startServer } from '../../../server/server.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';

interface Flags {
  dataDir?: string;
  store?: string;
  trustDomain?: string;
  adminListen?: string;
  agentListen?: string;
  config?: string;
  output: OutputFormat;
  logLevel?: string;
}

/** Config file values, then flags on top. */
export function rawOptions(flags: Flags): RawServerOptions {
  let file: Record<string, unknown> = {};
  if (flags.config !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(flags.config, 'utf8'), { maxAliasCount: 100 });
    } catch (error) {
      throw configError('config', `cannot read ${flags.config}: ${(error as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw configError('config', `${flags.config} must be a mapping`);
    file = parsed as Record<string, unknown>;
  }
  const known: (keyof RawServerOptions)[] = ['dataDir', 'store', 'trustDomain', 'adminListen', 'adminTls', 'agentListen', 'serverNames', 'svidTtl', 'agentSvidTtl', 'joinTokenTtl', 'adminTokenTtl', 'bodyLimit', 'scanBodyLimit', 'watchHeartbeat', 'maxWatchStreamsPerAgent', 'watchBufferLimit', 'pruneInterval', 'changeLogRetention', 'eventRetention', 'adminSpiffeIds', 'attestors', 'provenance', 'masterKeyProvider', 'masterKeyFile', 'refusalRateLimit'];
  for (const key of Object.keys(file)) if (!(known as string[]).includes(key)) throw configError(key, 'unknown server option');
  const out: RawServerOptions = { ...file };
  if (flags.dataDir !== undefined) out.dataDir = flags.dataDir;
  if (flags.store !== undefined) out.store = flags.store;
  if (flags.trustDomain !== undefined) out.trustDomain = flags.trustDomain;
  if (flags.adminListen !== undefined) out.adminListen = flags.adminListen;
  if (flags.agentListen !== undefined) out.agentListen = flags.agentListen;
  return out;
}

function common(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data directory (master key, SQLite database, bundle.pem)')
    .option('--store <url>', 'store URL: sqlite:<path> (default <data-dir>/ward.db) or postgres://…?schema=…')
    .option('--trust-domain <name>', 'SPIFFE trust domain (default ward.local)')
    .option('--config <file>', 'YAML file with server options (flags win)')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat);
}

export const registerServer: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('server').description('Run the Ward control plane');

  common(noun.command('init').description('Create the CA, the store and the bootstrap admin token (printed once)')).action(async (flags: Flags) => {
    try {
      const config = parseServerConfig(rawOptions(flags));
      const res = await initServer({ config, env: ctx.env, clock: ctx.clock });
      printResult(ctx, flags.output, { trustDomain: res.trustDomain, adminToken: res.adminToken, bundlePath: res.bundlePath }, () => [
        `initialised trust domain ${res.trustDomain} in ${config.dataDir}`,
        `trust bundle: ${res.bundlePath}`,
        '',
        'bootstrap admin token (shown once, stored only as a hash):',
        res.adminToken,
        '',
        `export WARD_TOKEN=${res.adminToken}`,
      ].join('\n'));
    } catch (error) {
      ctx.exitCode = reportError(ctx, flags.output, error);
    }
  });

  common(noun.command('start').description('Serve the admin API and the agent API until interrupted'))
    .option('--admin-listen <host:port>', 'admin API address (default 127.0.0.1:7400)')
    .option('--agent-listen <host:port>', 'agent API address, mutual TLS (default 0.0.0.0:7401)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .action(async (flags: Flags) => {
      try {
        const config = parseServerConfig(rawOptions(flags));
        const logger = createLogger({ name: 'ward-server', level: (flags.logLevel ?? 'info') as 'info' });
        const server = await startServer({ config, env: ctx.env, clock: ctx.clock, logger });
        printResult(ctx, flags.output, { adminUrl: server.adminUrl, agentUrl: server.agentUrl, serverSpiffeId: server.serverSpiffeId }, () =>
          `ward server: admin API ${server.adminUrl}, agent API ${server.agentUrl} (${server.serverSpiffeId})`);
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        await server.close();
      } catch (error) {
        ctx.exitCode = reportError(ctx, flags.output, error);
      }
    });
};
