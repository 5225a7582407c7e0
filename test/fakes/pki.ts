/**
 * Test certificates for the fakes: generated in-process with @peculiar/x509 (so validity windows
 * can be placed around the frozen test clock) and written to a temp dir for OpenSSL to use.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'ward-platforms-'));
  file(name: string, content: string | Buffer): string {
    const p = join(this.path, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export interface CertOptions {
  readonly name: string;
  readonly kind: 'rsa2048' | 'p256';
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial?: string;
  /** DNS/IP subjectAltNames for TLS server certs. */
  readonly san?: readonly string[];
}

export async function makeSelfSigned(dir: TempDir, options: CertOptions): Promise<TestCert> {
  const alg = options.kind === 'rsa2048'
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const extensions: x509.Extension[] = [];
  if (options.san && options.san.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(options.san.map((v) => (/^[\d.]+$/.test(v) ? { type: 'ip', value: v } : { type: 'dns', value: v }))));
  }
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: options.serial ?? '0a1b2c3d4e5f',
    name: options.name,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    keys,
    signingAlgorithm: alg,
    extensions,
  });
  const certPem = cert.toString('pem') + '\n';
  const keyPem = pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const base = `${options.name.replace(/[^A-Za-z0-9]/g, '_').slice(0, 40)}-${randomBytes(4).toString('hex')}`;
  return { certPem, keyPem, certPath: dir.file(`${base}.crt`, certPem), keyPath: dir.file(`${base}.key`, keyPem) };
}

export interface TestChain {
  readonly rootPem: string;
  readonly intermediatePem: string;
  readonly leafPem: string;
  /** PKCS#8 PEM of the leaf's key. */
  readonly leafKeyPem: string;
}

/** Root CA -> intermediate CA -> leaf (P-256), all valid over [notBefore, notAfter]. */
export async function makeChain(options: { notBefore: Date; notAfter: Date; leafName?: string; leafNotAfter?: Date }): Promise<TestChain> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const gen = async () => (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const [rootKeys, intKeys, leafKeys] = [await gen(), await gen(), await gen()];
  const caExt = async (keys: webcrypto.CryptoKeyPair) => [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const root = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=Ward Test Root CA', notBefore: options.notBefore, notAfter: options.notAfter, keys: rootKeys, signingAlgorithm: alg, extensions: await caExt(rootKeys) });
  const intermediate = await x509.X509CertificateGenerator.create({ serialNumber: '02', subject: 'CN=Ward Test Intermediate CA', issuer: root.subject, notBefore: options.notBefore, notAfter: options.notAfter, publicKey: intKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: alg, extensions: await caExt(intKeys) });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    subject: options.leafName ?? 'CN=build-01.example.org',
    issuer: intermediate.subject,
    notBefore: options.notBefore,
    notAfter: options.leafNotAfter ?? options.notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: intKeys.privateKey,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  return {
    rootPem: root.toString('pem'),
    intermediatePem: intermediate.toString('pem'),
    leafPem: leaf.toString('pem'),
    leafKeyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey)),
  };
}
