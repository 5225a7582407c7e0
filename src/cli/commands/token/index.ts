/**
 * `ward token create`: a single-use join token (default 10 minutes) for a VM or host agent, or
 * with `--admin --role <role> --name <name>` an admin API token. Either is printed once.
 */
import type { Command } from 'commander';
import { parseDuration } from '../../../core/config.js';
import type { Role } from '../../../api/types.js';
import { ApiError } from '../../../api/errors.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { withAdminClient, withConnection, type ConnectionOptions } from '../get/connection.js';
import { isoTime } from '../get/table.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

type Opts = ConnectionOptions & { ttl?: string; attribute: string[]; admin: boolean; role?: string; name?: string; output: OutputFormat };

export const registerToken: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('token').description('Create join tokens and admin tokens');
  const cmd = noun.command('create').description('Create a join token (default) or, with --admin, an admin API token; it is shown once')
    .option('--ttl <duration>', 'lifetime, e.g. 10m, 24h (join token default 10m)')
    .option('--attribute <key=value>', 'an attribute the node gets when it joins, e.g. host.name=vm-12 (repeatable)', collect, [] as string[])
    .option('--admin', 'create an admin API token instead', false)
    .option('--role <role>', 'admin token role: admin, operator, viewer, auditor')
    .option('--name <name>', 'admin token name (unique)')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat);
  withConnection(cmd).action(async (opts: Opts) => {
    try {
      const ttlSeconds = opts.ttl === undefined ? undefined : Math.max(1, Math.round(parseDuration(opts.ttl, '--ttl') / 1000));
      if (opts.admin) {
        if (opts.role === undefined || opts.name === undefined) throw new ApiError('ERR_API_INPUT', '--admin needs --role and --name');
        const res = await withAdminClient(ctx, opts, (c) => c.createAdminToken({ role: opts.role as Role, name: opts.name as string, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) }));
        printResult(ctx, opts.output, res, () => `${res.token}\n# admin token "${res.id}", role ${res.role}, expires ${isoTime(res.expiresAt)}; shown once`);
        return;
      }
      const attributes: Record<string, string> = {};
      for (const a of opts.attribute) {
        const eq = a.indexOf('=');
        if (eq <= 0) throw new ApiError('ERR_API_INPUT', `--attribute ${a}: expected key=value`);
        attributes[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const res = await withAdminClient(ctx, opts, (c) => c.createJoinToken({ ...(ttlSeconds === undefined ? {} : { ttlSeconds }), ...(opts.attribute.length === 0 ? {} : { attributes }) }));
      printResult(ctx, opts.output, res, () => `${res.token}\n# join token, single use, expires ${isoTime(res.expiresAt)}; shown once`);
    } catch (error) {
      ctx.exitCode = reportError(ctx, opts.output, error);
    }
  });
};
