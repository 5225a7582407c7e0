/**
 * Test PKI made with the `openssl` CLI: a P-256 CA and X.509-SVIDs with URI SANs, written to a
 * temporary directory. Replace with `src/pki` issuance once it lands.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TlsMaterial } from '../../../../src/agent/proxy/trust.js';

export interface TestCa {
  readonly dir: string;
  readonly certPem: string;
  readonly keyPath: string;
  readonly certPath: string;
  issue(uris: readonly string[], options?: { ca?: boolean; days?: number }): TestSvid;
  material(svid: TestSvid, bundlePem?: string): TlsMaterial;
  cleanup(): void;
}

export interface TestSvid {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Upper-case hex serial, as Node's X509Certificate reports it. */
  readonly serial: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestCa(name = 'test'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `ward-agent-pki-${name}-`));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', `/O=ward-test/CN=${name}-ca`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const certPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  let n = 0;
  const ca: TestCa = {
    dir,
    certPem,
    keyPath: join(dir, 'ca.key'),
    certPath: join(dir, 'ca.crt'),
    issue(uris, options = {}) {
      n += 1;
      const base = `svid${n}`;
      const serialHex = `5${randomBytes(8).toString('hex')}`.toUpperCase();
      const ext = [
        uris.length > 0 ? `subjectAltName=${uris.map((u) => `URI:${u}`).join(',')}` : '',
        options.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=critical,CA:FALSE',
        options.ca ? 'keyUsage=critical,keyCertSign' : 'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth,clientAuth',
      ].filter((l) => l !== '').join('\n');
      writeFileSync(join(dir, `${base}.ext`), `${ext}\n`);
      openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', '/O=ward-test'], dir);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${serialHex}`, '-days', String(options.days ?? 1), '-out', `${base}.crt`, '-extfile', `${base}.ext`], dir);
      return {
        certPem: readFileSync(join(dir, `${base}.crt`), 'utf8'),
        keyPem: readFileSync(join(dir, `${base}.key`), 'utf8'),
        certPath: join(dir, `${base}.crt`),
        keyPath: join(dir, `${base}.key`),
        serial: serialHex,
      };
    },
    material(svid, bundlePem = certPem) {
      return { certPem: svid.certPem, keyPem: svid.keyPem, bundlePem };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return ca;
}
