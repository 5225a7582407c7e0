/** `ward svid mint|verify`: X.509-SVIDs for bootstrapping and for checking certificates. */
import type { Command } from 'commander';
import { configError, parseDuration } from '../../../core/config.js';
import { bundleToPem, parseTrustBundle } from '../../../pki/bundle.js';
import { createSvidCsr } from '../../../pki/csr.js';
import { generateP256KeyPair, privateKeyToPem } from '../../../pki/keys.js';
import { writeFileAtomic } from '../../../pki/keystore/index.js';
import { issueX509Svid } from '../../../pki/svid-issue.js';
import { verifyX509Svid } from '../../../pki/svid-verify.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { openCa, readInputFile, withCaDirOptions, type KeyProviderFlags } from '../ca/open-ca.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 timestamp given on the command line (`--at`). */
export function parseRfc3339(text: string, path: string): number {
  const ms = RFC3339.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw configError(path, `"${text}" is not an RFC 3339 time like 2026-01-02T15:04:05Z`);
  return ms;
}

export const registerSvid: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const svid = program.command('svid').description('X.509-SVIDs: mint one from a CA directory, verify one against a bundle');

  withCaDirOptions(svid.command('mint').description('Generate a P-256 key and issue an X.509-SVID for it (bootstrap, agents without a server)'))
    .requiredOption('--spiffe-id <id>', 'SPIFFE ID to certify')
    .option('--ttl <duration>', 'lifetime (default: the CA default, 1h)')
    .requiredOption('--out-cert <file>', 'where to write the certificate chain (leaf first) as PEM')
    .requiredOption('--out-key <file>', 'where to write the private key as PKCS#8 PEM (mode 0600)')
    .option('--out-bundle <file>', 'where to write the trust bundle as PEM')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action(async (opts: KeyProviderFlags & { spiffeId: string; ttl?: string; outCert: string; outKey: string; outBundle?: string; output: OutputFormat }) => {
      try {
        const ca = await openCa(ctx, opts);
        const { privateKey } = generateP256KeyPair();
        const csr = createSvidCsr({ spiffeId: opts.spiffeId, privateKey });
        const issued = issueX509Svid({ ca, csr: csr.der, spiffeId: opts.spiffeId, clock: ctx.clock, ...(opts.ttl ? { ttlMs: parseDuration(opts.ttl, '--ttl') } : {}) });
        await writeFileAtomic(opts.outKey, privateKeyToPem(privateKey), 0o600);
        await writeFileAtomic(opts.outCert, issued.chainPem, 0o644);
        if (opts.outBundle) await writeFileAtomic(opts.outBundle, bundleToPem(ca.trustBundle()), 0o644);
        const value = { spiffeId: issued.spiffeId, serial: issued.serialHex, notBefore: new Date(issued.notBefore).toISOString(), notAfter: new Date(issued.notAfter).toISOString(), authority: issued.authorityId };
        printResult(ctx, opts.output, value, () => `issued ${value.spiffeId} (serial ${value.serial}) valid until ${value.notAfter}`);
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });

  svid
    .command('verify')
    .description('Verify an X.509-SVID (PEM, leaf first, intermediates after) against a trust bundle')
    .argument('<cert>', 'PEM file with the leaf and any intermediates')
    .requiredOption('--bundle <file>', 'trust bundle: PEM certificates or SPIFFE bundle JWKS')
    .option('--trust-domain <td>', 'require this trust domain')
    .option('--at <time>', 'verify at this RFC 3339 time instead of now')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action(async (certFile: string, opts: { bundle: string; trustDomain?: string; at?: string; output: OutputFormat }) => {
      try {
        const at = opts.at === undefined ? ctx.clock.now() : parseRfc3339(opts.at, '--at');
        const bundle = parseTrustBundle(await readInputFile(opts.bundle, '--bundle'), opts.trustDomain === undefined ? {} : { trustDomain: opts.trustDomain });
        const result = verifyX509Svid(await readInputFile(certFile, '<cert>'), bundle, { at, ...(opts.trustDomain === undefined ? {} : { trustDomain: opts.trustDomain }) });
        const value = { spiffeId: result.spiffeId.toString(), trustDomain: result.spiffeId.trustDomain, serial: result.serialHex, notBefore: new Date(result.notBefore).toISOString(), notAfter: new Date(result.notAfter).toISOString(), chainLength: result.path.length, tainted: result.tainted };
        printResult(ctx, opts.output, value, () => `valid: ${value.spiffeId} until ${value.notAfter}`);
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
};
