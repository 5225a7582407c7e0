/**
 * The CA directory format (`ward ca ... --dir <dir>`):
 *
 *   ca.json           CaState: certificates in PEM, every private key AES-256-GCM sealed (0600)
 *   bundle.pem        the trust bundle's X.509 authorities (for openssl, tls, curl)
 *   bundle.jwks.json  the SPIFFE bundle JWKS (spiffe_sequence, spiffe_refresh_hint)
 *   master.key        only when the `file` provider is used with its default path (0600)
 *
 * Files are replaced atomically (write to a temp file, fsync, rename) so a crash never leaves a
 * half-written state. No private key is ever written unsealed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { pid } from 'node:process';
import { join } from 'node:path';
import { bundleToJwks, bundleToPem } from '../bundle.js';
import { CertificateAuthority } from '../ca.js';
import { KeySealer } from '../envelope.js';
import { PkiError } from '../errors.js';
import type { MasterKeyProvider } from './provider.js';

export const CA_STATE_FILE = 'ca.json';
export const BUNDLE_PEM_FILE = 'bundle.pem';
export const BUNDLE_JWKS_FILE = 'bundle.jwks.json';
export const DEFAULT_MASTER_KEY_FILE = 'master.key';
export const LOCK_FILE = 'ca.lock';

/** Writes `data` to `path` atomically with the given mode. */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** Reads `<dir>/ca.json`; ERR_CA_NOT_FOUND when absent. */
export async function readCaState(dir: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(join(dir, CA_STATE_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new PkiError('ERR_CA_NOT_FOUND', `no CA in ${dir} (run ward ca init)`);
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PkiError('ERR_CA_STATE_INVALID', `${join(dir, CA_STATE_FILE)} is not valid JSON`, { cause: error });
  }
}

/** True when the directory already holds a CA. */
export async function caExists(dir: string): Promise<boolean> {
  try {
    await readFile(join(dir, CA_STATE_FILE));
    return true;
  } catch {
    return false;
  }
}

/** Saves the CA state and refreshes the exported bundle files. */
export async function saveCaDir(dir: string, ca: CertificateAuthority): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const bundle = ca.trustBundle();
  await writeFileAtomic(join(dir, CA_STATE_FILE), `${JSON.stringify(ca.toJSON(), null, 2)}\n`, 0o600);
  await writeFileAtomic(join(dir, BUNDLE_PEM_FILE), bundleToPem(bundle), 0o644);
  await writeFileAtomic(join(dir, BUNDLE_JWKS_FILE), `${JSON.stringify(bundleToJwks(bundle), null, 2)}\n`, 0o644);
}

/**
 * Opens the CA of a directory: reads `ca.json`, loads the master key from `provider` and checks
 * it is the one the keys were sealed under. The key buffer is zeroed once the sealer holds it.
 *
 * @example const ca = await openCaDir('/var/lib/ward/ca', createMasterKeyProvider('env', { env: process.env }));
 */
export async function openCaDir(dir: string, provider: MasterKeyProvider): Promise<CertificateAuthority> {
  const state = await readCaState(dir);
  const key = await provider.load();
  try {
    return CertificateAuthority.fromJSON(state, new KeySealer(key));
  } finally {
    key.fill(0);
  }
}

function processAlive(owner: number): boolean {
  try {
    process.kill(owner, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a lock left by dead process `owner`, under a short-lived second lock so two contenders
 * cannot both take over: without it, the slower one would delete the lock the faster one had just
 * created, and both would run. Only the lock still naming the dead owner is removed.
 */
async function removeStaleLock(path: string, owner: number): Promise<void> {
  const takeover = `${path}.takeover`;
  let handle;
  try {
    handle = await open(takeover, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return; // someone else is taking it over
    throw error;
  }
  try {
    await handle.close();
    const current = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (current === owner) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(takeover).catch(() => undefined);
  }
}

/**
 * Runs `body` holding the directory's exclusive lock (`ca.lock`, created with O_EXCL and holding
 * the owner's pid), so two `ward ca` commands never overwrite each other's state. A lock left by
 * a process that no longer exists is taken over; one held by a live process is ERR_CA_LOCKED.
 * `create` makes the directory first (for `ca init`); otherwise a missing directory is ERR_CA_NOT_FOUND.
 */
export async function withCaDirLock<T>(dir: string, body: () => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  if (options.create) await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new PkiError('ERR_CA_NOT_FOUND', `no CA in ${dir} (run ward ca init)`);
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (attempt === 0 && Number.isSafeInteger(owner) && owner > 0 && !processAlive(owner)) {
        await removeStaleLock(path, owner);
        continue;
      }
      throw new PkiError('ERR_CA_LOCKED', `${path} is held by process ${owner || 'unknown'}`);
    }
  }
  try {
    return await body();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}
