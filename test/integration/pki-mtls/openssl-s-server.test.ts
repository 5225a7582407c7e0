// Mutual TLS between `openssl s_server` and `openssl s_client`, both holding Ward SVIDs and the
// exported bundle: succeeds, and fails with a forged or foreign-trust-domain SVID.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir } from '../../unit/pki/support/forge.js';
import { bundlePem, freePort, newCa, svid, type Credentials } from './support.js';

let t: ReturnType<typeof tempDir>;
before(() => (t = tempDir('ward-sserver-')));
after(() => t.cleanup());

function files(name: string, creds: Credentials): { cert: string; key: string } {
  const cert = join(t.dir, `${name}.pem`);
  const key = join(t.dir, `${name}.key`);
  writeFileSync(cert, creds.chainPem);
  writeFileSync(key, creds.keyPem, { mode: 0o600 });
  return { cert, key };
}

function waitForPort(port: number, deadlineMs = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() - start > deadlineMs) reject(new Error('s_server did not start'));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

async function withServer<T>(server: { cert: string; key: string }, caFile: string, body: (port: number, log: () => string) => Promise<T>): Promise<T> {
  const port = await freePort();
  let log = '';
  const child: ChildProcess = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', server.cert, '-cert_chain', server.cert, '-key', server.key,
    '-CAfile', caFile, '-Verify', '3', '-verify_return_error', '-tls1_3', '-brief', '-www'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitForPort(port);
    return await body(port, () => log);
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
}

async function sClient(port: number, client: { cert: string; key: string }, caFile: string) {
  return run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', client.cert, '-cert_chain', client.cert, '-key', client.key,
    '-CAfile', caFile, '-verify', '3', '-verify_return_error', '-tls1_3', '-brief', '-ign_eof'], { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 10_000 });
}

const ca = newCa('example.org');
const bundleFile = (): string => {
  const p = join(t.dir, 'bundle.pem');
  writeFileSync(p, bundlePem(ca));
  return p;
};

test('openssl s_server <-> s_client mutual TLS with Ward SVIDs succeeds', async () => {
  const b = bundleFile();
  const server = files('srv', svid(ca, 'spiffe://example.org/api'));
  const client = files('cli', svid(ca, 'spiffe://example.org/web'));
  await withServer(server, b, async (port, log) => {
    const r = await sClient(port, client, b);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr + r.stdout, /Verification: OK/);
    assert.match(r.stderr + r.stdout, /CONNECTION ESTABLISHED/);
    assert.doesNotMatch(r.stderr + r.stdout, /alert/);
    assert.match(r.stdout, /HTTP\/1\.0 200 ok/, 'data flowed over the authenticated channel');
    assert.match(r.stdout, /Client certificate/, 's_server saw the client SVID');
    assert.doesNotMatch(log(), /verify error/);
  });
});

test('s_server refuses a forged client SVID; s_client refuses a forged server SVID', async () => {
  const b = bundleFile();
  const attacker = newCa('example.org');
  const server = files('srv2', svid(ca, 'spiffe://example.org/api'));
  const forgedClient = files('forged-cli', svid(attacker, 'spiffe://example.org/web'));
  await withServer(server, b, async (port, log) => {
    const r = await sClient(port, forgedClient, b);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /alert unknown ca/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.match(log(), /certificate verify failed|unable to get local issuer/);
  });
  const forgedServer = files('forged-srv', svid(attacker, 'spiffe://example.org/api'));
  const client = files('cli2', svid(ca, 'spiffe://example.org/web'));
  await withServer(forgedServer, b, async (port) => {
    const r = await sClient(port, client, b);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /verify error|certificate verify failed/);
  });
});

test('s_server refuses a client SVID from a foreign trust domain', async () => {
  const b = bundleFile();
  const foreign = newCa('other.org');
  const server = files('srv3', svid(ca, 'spiffe://example.org/api'));
  const client = files('foreign-cli', svid(foreign, 'spiffe://other.org/web'));
  await withServer(server, b, async (port) => {
    const r = await sClient(port, client, b);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /alert unknown ca/);
  });
});
