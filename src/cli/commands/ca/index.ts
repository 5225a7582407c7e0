/**
 * `ward ca init|show|bundle|rotate prepare|rotate activate|taint|revoke`: a trust domain's CA
 * kept in a directory, keys sealed under the master key.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDuration } from '../../../core/config.js';
import { bundleToJwks, bundleToPem } from '../../../pki/bundle.js';
import { CertificateAuthority, type AuthoritySummary } from '../../../pki/ca.js';
import { KeySealer } from '../../../pki/envelope.js';
import { PkiError } from '../../../pki/errors.js';
import { caExists, saveCaDir, withCaDirLock } from '../../../pki/keystore/index.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { ensureDir, masterKeyProvider, openCa, readInputFile, withCaDirOptions, type KeyProviderFlags } from './open-ca.js';

interface CommonFlags extends KeyProviderFlags {
  output: OutputFormat;
}

const outputOption = (cmd: Command): Command => cmd.option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat);

function renderAuthorities(list: readonly AuthoritySummary[]): string {
  const rows = list.map((a) => `${a.id}  ${a.state.padEnd(8)}  not after ${a.notAfter}  jwt kid ${a.jwtKid}`);
  return rows.join('\n');
}

async function run(ctx: CliContext, format: OutputFormat, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    ctx.exitCode = reportError(ctx, format, error);
  }
}

export const registerCa: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const ca = program.command('ca').description('Certificate authority of a trust domain: init, rotation, bundle export');

  outputOption(withCaDirOptions(ca.command('init').description('Create a root (or chain under --upstream-cert) and a signing CA, keys sealed under the master key')))
    .requiredOption('--trust-domain <td>', 'trust domain name, e.g. example.org')
    .option('--upstream-cert <file>', 'PEM certificate (chain) of an enterprise CA to chain under')
    .option('--upstream-key <file>', 'PEM private key of the upstream CA (stored sealed)')
    .option('--ca-ttl <duration>', 'lifetime of each authority', '365d')
    .option('--svid-ttl <duration>', 'default X.509-SVID lifetime', '1h')
    .option('--max-svid-ttl <duration>', 'longest SVID lifetime the CA grants', '24h')
    .action(async (opts: CommonFlags & { trustDomain: string; upstreamCert?: string; upstreamKey?: string; caTtl: string; svidTtl: string; maxSvidTtl: string }) =>
      run(ctx, opts.output, async () => withCaDirLock(opts.dir, async () => {
        if (await caExists(opts.dir)) throw new PkiError('ERR_CA_EXISTS', `${opts.dir} already holds a CA`);
        if ((opts.upstreamCert === undefined) !== (opts.upstreamKey === undefined)) {
          throw new PkiError('ERR_CA_UPSTREAM_INVALID', '--upstream-cert and --upstream-key go together');
        }
        const upstream = opts.upstreamCert !== undefined && opts.upstreamKey !== undefined
          ? { certPem: await readInputFile(opts.upstreamCert, '--upstream-cert'), keyPem: await readInputFile(opts.upstreamKey, '--upstream-key') }
          : undefined;
        const provider = masterKeyProvider(ctx, opts);
        await ensureDir(opts.dir);
        const key = await provider.ensure();
        const sealer = new KeySealer(key);
        key.fill(0);
        const authority = CertificateAuthority.create({
          trustDomain: opts.trustDomain,
          clock: ctx.clock,
          sealer,
          caTtlMs: parseDuration(opts.caTtl, '--ca-ttl'),
          defaultSvidTtlMs: parseDuration(opts.svidTtl, '--svid-ttl'),
          maxSvidTtlMs: parseDuration(opts.maxSvidTtl, '--max-svid-ttl'),
          ...(upstream ? { upstream } : {}),
        });
        await saveCaDir(opts.dir, authority);
        const value = { trustDomain: authority.trustDomain, dir: opts.dir, masterKey: `${provider.name}:${provider.location}`, sequence: authority.sequence, authorities: authority.authorities() };
        printResult(ctx, opts.output, value, () => `CA for ${authority.trustDomain} in ${opts.dir} (master key: ${provider.name} ${provider.location})\n${renderAuthorities(value.authorities)}`);
      }, { create: true })));

  outputOption(withCaDirOptions(ca.command('show').description('List the authorities and their states')))
    .action(async (opts: CommonFlags) => run(ctx, opts.output, async () => {
      const authority = await openCa(ctx, opts);
      const value = { trustDomain: authority.trustDomain, sequence: authority.sequence, upstream: authority.upstream, authorities: authority.authorities() };
      printResult(ctx, opts.output, value, () => `trust domain ${value.trustDomain}, bundle sequence ${value.sequence}\n${renderAuthorities(value.authorities)}`);
    }));

  withCaDirOptions(ca.command('bundle').description('Print the trust bundle (every authority that must be trusted now)'))
    .option('--format <pem|jwks>', 'PEM certificates or SPIFFE bundle JWKS', 'pem')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (opts: KeyProviderFlags & { format: string; out?: string }) => run(ctx, 'text', async () => {
      if (opts.format !== 'pem' && opts.format !== 'jwks') throw new PkiError('ERR_BUNDLE_MALFORMED', '--format must be pem or jwks');
      const authority = await openCa(ctx, opts);
      const bundle = authority.trustBundle();
      const text = opts.format === 'pem' ? bundleToPem(bundle) : `${JSON.stringify(bundleToJwks(bundle), null, 2)}\n`;
      if (opts.out) await writeFile(opts.out, text);
      else ctx.io.stdout(text);
    }));

  const mutate = (name: string, description: string, action: (authority: CertificateAuthority, id: string | undefined) => AuthoritySummary, withId: boolean, parent: Command = ca): void => {
    let cmd = outputOption(withCaDirOptions(parent.command(name).description(description)));
    if (withId) cmd = cmd.argument('<authority-id>', 'authority id from `ward ca show`');
    cmd.action(async (...args: unknown[]) => {
      const opts = (withId ? args[1] : args[0]) as CommonFlags;
      const id = withId ? (args[0] as string) : undefined;
      await run(ctx, opts.output, async () => {
        const [authority, summary] = await withCaDirLock(opts.dir, async () => {
          const loaded = await openCa(ctx, opts);
          loaded.prune(ctx.clock);
          const changed = action(loaded, id);
          await saveCaDir(opts.dir, loaded);
          return [loaded, changed] as const;
        });
        const value = { authority: summary, sequence: authority.sequence, authorities: authority.authorities() };
        printResult(ctx, opts.output, value, () => `authority ${summary.id} is now ${summary.state}; bundle sequence ${authority.sequence}\n${renderAuthorities(value.authorities)}`);
      });
    });
  };

  const rotate = ca.command('rotate').description('Rotate the signing authority without downtime: prepare, wait for the bundle to spread, activate');
  mutate('prepare', 'Create the next authority and publish it in the trust bundle (not issuing yet)', (a) => a.prepare(ctx.clock), false, rotate);
  mutate('activate', 'Issue under the prepared authority; the previous one stays trusted until it expires', (a) => a.activate(ctx.clock), false, rotate);
  mutate('taint', 'Mark a retired authority compromised so workloads under it re-issue now', (a, id) => a.taint(id as string, ctx.clock), true);
  mutate('revoke', 'Remove a tainted authority from the trust bundle and destroy its keys', (a, id) => a.revoke(id as string, ctx.clock), true);
};
