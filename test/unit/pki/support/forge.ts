/**
 * Builds certificates for tests with @peculiar/x509 (a library Ward's issuer does not use), so
 * every rejection rule is exercised by a certificate Ward did not make: a test CA, and leaves
 * breaking exactly one rule each. Also shared helpers for temp dirs and running openssl.
 */
import 'reflect-metadata';
import { webcrypto, createPrivateKey, type KeyObject } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const KU = x509.KeyUsageFlags;

export interface TestCert {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly pem: string;
  readonly der: Buffer;
}

export type { CryptoKeyPair };

export async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function wrap(cert: x509.X509Certificate, keys: CryptoKeyPair): TestCert {
  return { cert, keys, pem: cert.toString('pem') + '\n', der: Buffer.from(cert.rawData) };
}

let serial = 1;
const nextSerial = (): string => (serial++).toString(16).padStart(4, '0').replace(/^[89a-f]/, '0$&');

export interface CaSpec {
  name: string;
  issuer?: TestCert;
  ca?: boolean;
  keyUsage?: number;
  pathLength?: number;
  notBefore: Date;
  notAfter: Date;
  extra?: x509.Extension[];
}

/** A CA certificate (self-signed unless `issuer`), defaulting to a well-formed signing CA. */
export async function makeCa(spec: CaSpec): Promise<TestCert> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [];
  if (spec.ca !== false) extensions.push(new x509.BasicConstraintsExtension(true, spec.pathLength, true));
  else extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
  if (spec.keyUsage !== 0) extensions.push(new x509.KeyUsagesExtension(spec.keyUsage ?? (KU.keyCertSign | KU.cRLSign), true));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (spec.issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(spec.issuer.keys.publicKey));
  extensions.push(...(spec.extra ?? []));
  const common = { serialNumber: nextSerial(), notBefore: spec.notBefore, notAfter: spec.notAfter, signingAlgorithm: ALG, extensions };
  const cert = spec.issuer
    ? await x509.X509CertificateGenerator.create({ ...common, subject: spec.name, issuer: spec.issuer.cert.subject, publicKey: keys.publicKey, signingKey: spec.issuer.keys.privateKey })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: spec.name, keys });
  return wrap(cert, keys);
}

export interface LeafSpec {
  issuer: TestCert;
  uris?: string[];
  dns?: string[];
  ca?: boolean;
  /** `null` = no key usage extension at all. */
  keyUsage?: number | null;
  notBefore: Date;
  notAfter: Date;
  extra?: x509.Extension[];
  subject?: string;
  /** `false` = no authority key identifier (RFC 5280 requires one). */
  authorityKeyId?: boolean;
}

/** A leaf; defaults make a valid X509-SVID for spiffe://test.example/workload. */
export async function makeLeaf(spec: LeafSpec): Promise<TestCert> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [];
  if (spec.ca) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  else extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
  if (spec.keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(spec.keyUsage ?? KU.digitalSignature, true));
  extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]));
  const names = [...(spec.uris ?? ['spiffe://test.example/workload']).map((value) => ({ type: 'url' as const, value })), ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  if (spec.authorityKeyId !== false) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(spec.issuer.keys.publicKey));
  extensions.push(...(spec.extra ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(), subject: spec.subject ?? 'O=Test', issuer: spec.issuer.cert.subject, notBefore: spec.notBefore, notAfter: spec.notAfter,
    signingAlgorithm: ALG, publicKey: keys.publicKey, signingKey: spec.issuer.keys.privateKey, extensions,
  });
  return wrap(cert, keys);
}

/** The private key of a test certificate as a node KeyObject. */
export async function keyObjectOf(keys: CryptoKeyPair): Promise<KeyObject> {
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix = 'ward-pki-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with a hard timeout (no test may hang). */
export function run(cmd: string, args: readonly string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // the tool may exit before reading stdin
    child.stdin.end(options.input ?? '');
  });
}
