/** Credentials for the mTLS scenarios: a Ward CA and SVIDs minted at real "now" (TLS stacks use the wall clock). */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { ManualClock } from '../../../src/core/clock.js';
import { bundleToPem } from '../../../src/pki/bundle.js';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { KeySealer } from '../../../src/pki/envelope.js';
import { generateP256KeyPair, privateKeyToPem } from '../../../src/pki/keys.js';
import { issueX509Svid } from '../../../src/pki/svid-issue.js';

export interface Credentials {
  readonly spiffeId: string;
  readonly keyPem: string;
  readonly chainPem: string;
}

/** The clock of these scenarios: fixed for the whole run, at the real time OpenSSL will use. */
export const clock = new ManualClock(Date.now());

export function newCa(trustDomain: string): CertificateAuthority {
  return CertificateAuthority.create({ trustDomain, clock, sealer: new KeySealer(randomBytes(32)) });
}

export function svid(ca: CertificateAuthority, spiffeId: string): Credentials {
  const { privateKey } = generateP256KeyPair();
  const issued = issueX509Svid({ ca, csr: createSvidCsr({ spiffeId, privateKey }).der, spiffeId, clock });
  return { spiffeId, keyPem: privateKeyToPem(privateKey), chainPem: issued.chainPem };
}

export const bundlePem = (ca: CertificateAuthority): string => bundleToPem(ca.trustBundle());

/** A free loopback port (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}
