/** `ward jwt-svid mint|verify`: JWT-SVIDs from a CA directory, checked against a bundle. */
import type { Command } from 'commander';
import { parseDuration } from '../../../core/config.js';
import { parseTrustBundle } from '../../../pki/bundle.js';
import { mintJwtSvid, verifyJwtSvid } from '../../../pki/jwt-svid.js';
import { writeFileAtomic } from '../../../pki/keystore/index.js';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { parseOutputFormat, printResult, reportError, type OutputFormat } from '../../output.js';
import { openCa, readInputFile, withCaDirOptions, type KeyProviderFlags } from '../ca/open-ca.js';
import { parseRfc3339 } from '../svid/index.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export const registerJwtSvid: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const jwt = program.command('jwt-svid').description('JWT-SVIDs: mint from a CA directory, verify against a bundle');

  withCaDirOptions(jwt.command('mint').description('Mint a JWT-SVID (ES256) under the active authority'))
    .requiredOption('--spiffe-id <id>', 'subject SPIFFE ID')
    .requiredOption('--audience <aud>', 'audience (repeatable)', collect)
    .option('--ttl <duration>', 'lifetime', '5m')
    .option('--out <file>', 'write the token to a file (mode 0600) instead of stdout')
    .option('-o, --output <format>', 'text (the bare token), json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action(async (opts: KeyProviderFlags & { spiffeId: string; audience: string[]; ttl: string; out?: string; output: OutputFormat }) => {
      try {
        const ca = await openCa(ctx, opts);
        const token = await mintJwtSvid({ ca, spiffeId: opts.spiffeId, audience: opts.audience, ttlMs: parseDuration(opts.ttl, '--ttl'), clock: ctx.clock });
        if (opts.out) await writeFileAtomic(opts.out, `${token}\n`, 0o600);
        if (opts.output === 'text') {
          if (!opts.out) ctx.io.stdout(`${token}\n`);
          return;
        }
        const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string; aud: string | string[]; exp: number };
        const value = {
          spiffeId: claims.sub,
          audience: Array.isArray(claims.aud) ? claims.aud : [claims.aud],
          expiresAt: new Date(claims.exp * 1000).toISOString(),
          ...(opts.out ? { out: opts.out } : { token }),
        };
        printResult(ctx, opts.output, value, () => token);
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output ?? 'text', error);
      }
    });

  jwt
    .command('verify')
    .description('Verify a JWT-SVID against the JWT authorities of a bundle (JWKS)')
    .argument('<token>', 'the token, or @file to read it from a file')
    .requiredOption('--bundle <file>', 'SPIFFE bundle JWKS')
    .requiredOption('--audience <aud>', 'the audience this verifier is')
    .option('--trust-domain <td>', 'require this trust domain')
    .option('--at <time>', 'verify at this RFC 3339 time instead of now')
    .option('-o, --output <format>', 'text, json or yaml', parseOutputFormat, 'text' as OutputFormat)
    .action(async (tokenArg: string, opts: { bundle: string; audience: string; trustDomain?: string; at?: string; output: OutputFormat }) => {
      try {
        const token = tokenArg.startsWith('@') ? (await readInputFile(tokenArg.slice(1), '<token>')).trim() : tokenArg;
        const at = opts.at === undefined ? ctx.clock.now() : parseRfc3339(opts.at, '--at');
        const td = opts.trustDomain === undefined ? {} : { trustDomain: opts.trustDomain };
        const bundle = parseTrustBundle(await readInputFile(opts.bundle, '--bundle'), td);
        const result = await verifyJwtSvid(token, bundle, { audience: opts.audience, at, ...td });
        const value = { spiffeId: result.spiffeId.toString(), audience: result.audience, expiresAt: new Date(result.expiresAt).toISOString() };
        printResult(ctx, opts.output, value, () => `valid: ${value.spiffeId} for ${value.audience.join(', ')} until ${value.expiresAt}`);
      } catch (error) {
        ctx.exitCode = reportError(ctx, opts.output, error);
      }
    });
};
