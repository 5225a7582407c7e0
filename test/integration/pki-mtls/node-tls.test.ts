// A real mutual-TLS handshake between two Node `tls` endpoints using Ward SVIDs, each side
// authorising the peer by SPIFFE ID with verifyX509Svid; forged and foreign-trust-domain SVIDs fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:tls';
import { parseTrustBundle, type TrustBundle } from '../../../src/pki/bundle.js';
import { PkiError } from '../../../src/pki/errors.js';
import { peerCertificateChain, verifyX509Svid } from '../../../src/pki/svid-verify.js';
import { bundlePem, clock, newCa, svid, type Credentials } from './support.js';

interface Outcome {
  serverSaw?: string;
  clientSaw?: string;
  serverError?: string;
  clientError?: string;
}

/** One handshake + one echoed message; resolves when both sides are done or failed (5 s cap). */
async function handshake(opts: { server: Credentials; client: Credentials; serverTrusts: string; clientTrusts: string; serverBundle: TrustBundle; clientBundle: TrustBundle; trustDomain: string }): Promise<Outcome> {
  const outcome: Outcome = {};
  const server = createServer({ key: opts.server.keyPem, cert: opts.server.chainPem, ca: opts.serverTrusts, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    try {
      outcome.serverSaw = verifyX509Svid(peerCertificateChain(socket.getPeerCertificate(true)), opts.serverBundle, { at: clock.now(), trustDomain: opts.trustDomain }).spiffeId.toString();
      socket.end('pong');
    } catch (e) {
      outcome.serverError = e instanceof PkiError ? e.code : String(e);
      socket.destroy();
    }
  });
  server.on('tlsClientError', (e) => (outcome.serverError ??= (e as NodeJS.ErrnoException).code ?? e.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        outcome.clientError ??= 'timeout';
        socket.destroy();
        resolve();
      }, 5000);
      const socket = connect({
        host: '127.0.0.1', port, key: opts.client.keyPem, cert: opts.client.chainPem, ca: opts.clientTrusts, minVersion: 'TLSv1.3',
        // SPIFFE authorises by ID, not hostname: check the server's SPIFFE ID instead.
        checkServerIdentity: (_host, cert) => {
          try {
            outcome.clientSaw = verifyX509Svid(peerCertificateChain(cert), opts.clientBundle, { at: clock.now(), trustDomain: opts.trustDomain }).spiffeId.toString();
            return undefined;
          } catch (e) {
            return e instanceof Error ? e : new Error(String(e));
          }
        },
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('error', (e: NodeJS.ErrnoException) => (outcome.clientError ??= e.code ?? e.message));
      socket.on('close', () => {
        clearTimeout(timer);
        if (data !== 'pong') outcome.clientError ??= 'no reply';
        resolve();
      });
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return outcome;
}

const ca = newCa('example.org');
const serverCreds = svid(ca, 'spiffe://example.org/ns/prod/sa/api');
const clientCreds = svid(ca, 'spiffe://example.org/ns/prod/sa/web');
const bundleText = bundlePem(ca);
const bundle = parseTrustBundle(bundleText, { trustDomain: 'example.org' });
const base = { server: serverCreds, client: clientCreds, serverTrusts: bundleText, clientTrusts: bundleText, serverBundle: bundle, clientBundle: bundle, trustDomain: 'example.org' };

test('mTLS between two Node endpoints with Ward SVIDs: each side learns the other\'s SPIFFE ID', async () => {
  const o = await handshake(base);
  assert.deepEqual(o, { serverSaw: 'spiffe://example.org/ns/prod/sa/web', clientSaw: 'spiffe://example.org/ns/prod/sa/api' });
});

test('a forged client SVID (same names, attacker CA) fails the handshake', async () => {
  const attacker = newCa('example.org');
  const o = await handshake({ ...base, client: svid(attacker, 'spiffe://example.org/ns/prod/sa/web') });
  assert.equal(o.serverSaw, undefined);
  assert.ok(o.serverError, 'server refused');
  assert.ok(o.clientError, 'client saw the failure');
});

test('a forged server SVID fails on the client', async () => {
  const attacker = newCa('example.org');
  const o = await handshake({ ...base, server: svid(attacker, 'spiffe://example.org/ns/prod/sa/api') });
  assert.equal(o.clientSaw, undefined);
  assert.equal(o.serverSaw, undefined);
  assert.ok(o.clientError);
});

test('a foreign-trust-domain client SVID fails: at TLS without federation, at the SPIFFE check with it', async () => {
  const foreign = newCa('other.org');
  const foreignClient = svid(foreign, 'spiffe://other.org/ns/prod/sa/web');
  const plain = await handshake({ ...base, client: foreignClient });
  assert.equal(plain.serverSaw, undefined);
  assert.ok(plain.serverError);
  // Even if TLS trusts both roots, the SPIFFE trust-domain rule refuses the peer.
  const both = bundleText + bundlePem(foreign);
  const federated = await handshake({ ...base, client: foreignClient, serverTrusts: both, serverBundle: parseTrustBundle(both) });
  assert.equal(federated.serverSaw, undefined);
  assert.equal(federated.serverError, 'ERR_SVID_WRONG_TRUST_DOMAIN');
});
