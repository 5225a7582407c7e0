/**
 * How the admin commands (`get`, `apply`, `delete`, `token`, `scan`) reach a server: the URL from
 * `--server`, `$WARD_SERVER` or the CLI config file; the token from `$WARD_TOKEN` or the config
 * file (never a flag, so it stays out of shell history and `ps`); for an https admin listener,
 * the CA bundle from `--ca-file`, `$WARD_CA_FILE` or the config file.
 *
 * Config file: `--config`, `$WARD_CONFIG`, else `$HOME/.config/ward/cli.yaml`:
 * ```yaml
 * server: http://127.0.0.1:7400
 * token: ward_adm_...
 * caFile: /var/lib/ward/bundle.pem
 * ```
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { WardClient } from '../../../api/client.js';
import { ApiError } from '../../../api/errors.js';
import type { CliContext } from '../../context.js';

export interface ConnectionOptions {
  server?: string;
  caFile?: string;
  config?: string;
}

/** Adds `--server`, `--ca-file`, `--config` to a command. */
export function withConnection(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'admin API URL (default $WARD_SERVER or the config file)')
    .option('--ca-file <path>', 'CA bundle for an https admin API (default $WARD_CA_FILE)')
    .option('--config <path>', 'CLI config file (default $WARD_CONFIG or ~/.config/ward/cli.yaml)');
}

interface FileConfig {
  server?: string;
  token?: string;
  caFile?: string;
}

function readConfig(ctx: CliContext, explicit: string | undefined): FileConfig {
  const path = explicit ?? ctx.env['WARD_CONFIG'] ?? (ctx.env['HOME'] === undefined ? undefined : join(ctx.env['HOME'], '.config', 'ward', 'cli.yaml'));
  if (path === undefined || (explicit === undefined && !existsSync(path))) return {};
  let raw: unknown;
  try {
    if (statSync(path).size > 64 * 1024) throw new Error('larger than 64 KiB');
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ApiError('ERR_API_NO_SERVER', `cannot read CLI config ${path}: ${(error as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError('ERR_API_NO_SERVER', `CLI config ${path} must be a mapping`);
  const out: FileConfig = {};
  for (const key of ['server', 'token', 'caFile'] as const) {
    const v = (raw as Record<string, unknown>)[key];
    if (v !== undefined) {
      if (typeof v !== 'string') throw new ApiError('ERR_API_NO_SERVER', `CLI config ${path}: ${key} must be a string`);
      out[key] = v;
    }
  }
  return out;
}

/** Builds the admin client; throws ERR_API_NO_SERVER when no URL is configured. */
export function adminClient(ctx: CliContext, opts: ConnectionOptions): WardClient {
  const file = readConfig(ctx, opts.config);
  const server = opts.server ?? ctx.env['WARD_SERVER'] ?? file.server;
  if (server === undefined || server === '') throw new ApiError('ERR_API_NO_SERVER', 'no server URL given: pass --server or set WARD_SERVER');
  const token = ctx.env['WARD_TOKEN'] ?? file.token;
  const caFile = opts.caFile ?? ctx.env['WARD_CA_FILE'] ?? file.caFile;
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new ApiError('ERR_API_NO_SERVER', `cannot read CA bundle ${caFile}: ${(error as Error).message}`);
    }
  }
  return new WardClient({ baseUrl: server, ...(token === undefined || token === '' ? {} : { token }), ...(ca === undefined ? {} : { tls: { ca } }) });
}

/** Runs `fn` with an admin client, closing it afterwards. */
export async function withAdminClient<T>(ctx: CliContext, opts: ConnectionOptions, fn: (client: WardClient) => Promise<T>): Promise<T> {
  const client = adminClient(ctx, opts);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
