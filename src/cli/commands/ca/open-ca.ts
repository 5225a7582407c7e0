/** Shared by the ca, svid and jwt-svid commands: pick the master-key provider and open a CA dir. */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configError } from '../../../core/config.js';
import type { Command } from 'commander';
import type { CertificateAuthority } from '../../../pki/ca.js';
import { DEFAULT_MASTER_KEY_FILE, MASTER_KEY_ENV, createMasterKeyProvider, openCaDir, saveCaDir, type MasterKeyProvider } from '../../../pki/keystore/index.js';
import type { CliContext } from '../../context.js';

export interface KeyProviderFlags {
  dir: string;
  keyProvider?: string;
  masterKeyFile?: string;
}

/** Adds --dir, --key-provider and --master-key-file to a command. */
export function withCaDirOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--dir <dir>', 'CA directory (ca.json, bundle.pem, bundle.jwks.json)')
    .option('--key-provider <name>', `master key provider: env ($${MASTER_KEY_ENV}) or file; default env when $${MASTER_KEY_ENV} is set, else file`)
    .option('--master-key-file <path>', `master key file for the file provider (default <dir>/${DEFAULT_MASTER_KEY_FILE})`);
}

export function masterKeyProvider(ctx: CliContext, flags: KeyProviderFlags): MasterKeyProvider {
  const name = flags.keyProvider ?? (ctx.env[MASTER_KEY_ENV] ? 'env' : 'file');
  return createMasterKeyProvider(name, { env: ctx.env, path: flags.masterKeyFile ?? join(flags.dir, DEFAULT_MASTER_KEY_FILE) });
}

/** Opens the CA of a directory with its master key. */
export async function openCa(ctx: CliContext, flags: KeyProviderFlags): Promise<CertificateAuthority> {
  return openCaDir(flags.dir, masterKeyProvider(ctx, flags));
}

export { saveCaDir };

/** Reads a file named on the command line; a missing/unreadable file is ERR_CONFIG_INVALID naming the flag. */
export async function readInputFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw configError(flag, `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/** Creates the CA directory (0700) so the file provider can put its key there. */
export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}
