// The ward spiffe-id | ca | svid | jwt-svid commands, run in-process with a fixed clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../../../src/core/clock.js';
import { runCli } from '../../helpers/cli.js';
import { tempDir } from './support/forge.js';

const T0 = '2026-06-01T00:00:00Z';

test('spiffe-id parse: exit 0 with the parts, exit 1 with the rule code', async () => {
  const ok = await runCli(['spiffe-id', 'parse', 'spiffe://example.org/ns/a/sa/b', '-o', 'json']);
  assert.equal(ok.code, 0);
  assert.deepEqual(JSON.parse(ok.stdout), { spiffeId: 'spiffe://example.org/ns/a/sa/b', trustDomain: 'example.org', path: '/ns/a/sa/b', segments: ['ns', 'a', 'sa', 'b'] });
  const text = await runCli(['spiffe-id', 'parse', 'spiffe://example.org']);
  assert.match(text.stdout, /trust domain: example.org/);
  const bad = await runCli(['spiffe-id', 'parse', 'spiffe://example.org/a//b']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^ward: ERR_SPIFFE_ID_EMPTY_SEGMENT: /);
  const badJson = await runCli(['spiffe-id', 'parse', 'SPIFFE://example.org', '-o', 'json']);
  assert.equal(badJson.code, 1);
  assert.equal(JSON.parse(badJson.stdout).error.code, 'ERR_SPIFFE_ID_SCHEME');
  assert.equal((await runCli(['spiffe-id', 'parse'])).code, 2, 'usage error');
});

test('ca init / svid mint / svid verify / rotate / taint / revoke / jwt-svid, end to end', async () => {
  const t = tempDir();
  const clock = new ManualClock(T0);
  const env = { WARD_MASTER_KEY: randomBytes(32).toString('base64') };
  const cli = (args: string[], e: Record<string, string> = env) => runCli(args, { clock, env: e });
  const dir = join(t.dir, 'ca');
  const f = (name: string) => join(t.dir, name);
  try {
    const init = await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'example.org', '-o', 'json']);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(JSON.parse(init.stdout).masterKey, 'env:$WARD_MASTER_KEY');
    assert.equal(statSync(join(dir, 'ca.json')).mode & 0o777, 0o600);
    const state = readFileSync(join(dir, 'ca.json'), 'utf8');
    assert.ok(!state.includes('PRIVATE KEY') && !state.includes(env.WARD_MASTER_KEY));
    assert.match((await cli(['ca', 'init', '--dir', dir, '--trust-domain', 'example.org'])).stderr, /ERR_CA_EXISTS/);

    const mint = await cli(['svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://example.org/web', '--out-cert', f('web.pem'), '--out-key', f('web.key'), '--out-bundle', f('bundle.pem'), '-o', 'json']);
    assert.equal(mint.code, 0, mint.stderr);
    assert.equal(JSON.parse(mint.stdout).notAfter, '2026-06-01T01:00:00.000Z');
    assert.equal(statSync(f('web.key')).mode & 0o777, 0o600);
    assert.match(readFileSync(f('web.key'), 'utf8'), /BEGIN PRIVATE KEY/);
    assert.equal((readFileSync(f('web.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'leaf + intermediate');

    const verify = await cli(['svid', 'verify', '--bundle', join(dir, 'bundle.jwks.json'), f('web.pem'), '-o', 'json']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal(JSON.parse(verify.stdout).spiffeId, 'spiffe://example.org/web');
    assert.equal((await cli(['svid', 'verify', '--bundle', f('bundle.pem'), f('web.pem')])).code, 0);
    const late = await cli(['svid', 'verify', '--bundle', f('bundle.pem'), '--at', '2026-06-01T02:00:00Z', f('web.pem')]);
    assert.match(late.stderr, /ERR_SVID_EXPIRED/);
    assert.equal(late.code, 1);
    assert.match((await cli(['svid', 'verify', '--bundle', f('bundle.pem'), '--at', '2026-05-31T23:00:00Z', f('web.pem')])).stderr, /ERR_SVID_NOT_YET_VALID/);
    assert.match((await cli(['svid', 'verify', '--bundle', f('bundle.pem'), '--trust-domain', 'other.org', f('web.pem')])).stderr, /ERR_SVID_WRONG_TRUST_DOMAIN/);
    assert.match((await cli(['svid', 'verify', '--bundle', f('bundle.pem'), '--at', 'yesterday', f('web.pem')])).stderr, /ERR_CONFIG_INVALID/);
    assert.match((await cli(['svid', 'verify', '--bundle', f('nope.pem'), f('web.pem')])).stderr, /ERR_CONFIG_INVALID: --bundle/);
    assert.match((await cli(['svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://other.org/web', '--out-cert', f('x.pem'), '--out-key', f('x.key')])).stderr, /ERR_SVID_WRONG_TRUST_DOMAIN/);
    assert.match((await cli(['svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://example.org/web', '--ttl', '48h', '--out-cert', f('x.pem'), '--out-key', f('x.key')])).stderr, /ERR_SVID_TTL_INVALID/);

    // Wrong master key: refused before any key is used.
    assert.match((await cli(['ca', 'show', '--dir', dir], { WARD_MASTER_KEY: randomBytes(32).toString('hex') })).stderr, /ERR_MASTER_KEY_MISMATCH/);

    // Rotation.
    const firstId = JSON.parse((await cli(['ca', 'show', '--dir', dir, '-o', 'json'])).stdout).authorities[0].id as string;
    assert.equal((await cli(['ca', 'rotate', 'prepare', '--dir', dir])).code, 0);
    const jwks = JSON.parse(readFileSync(join(dir, 'bundle.jwks.json'), 'utf8'));
    assert.equal(jwks.spiffe_sequence, 2);
    assert.equal(jwks.keys.filter((k: { use: string }) => k.use === 'x509-svid').length, 2);
    assert.equal((await cli(['ca', 'rotate', 'activate', '--dir', dir])).code, 0);
    assert.equal((await cli(['svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://example.org/api', '--out-cert', f('api.pem'), '--out-key', f('api.key')])).code, 0);
    for (const cert of ['web.pem', 'api.pem']) assert.equal((await cli(['svid', 'verify', '--bundle', join(dir, 'bundle.pem'), cert === 'web.pem' ? f(cert) : f(cert)])).code, 0, cert);
    assert.match((await cli(['ca', 'revoke', '--dir', dir, firstId])).stderr, /ERR_CA_REVOKE_NOT_TAINTED/);
    assert.equal((await cli(['ca', 'taint', '--dir', dir, firstId])).code, 0);
    assert.equal((await cli(['ca', 'revoke', '--dir', dir, firstId])).code, 0);
    const pemOut = await cli(['ca', 'bundle', '--dir', dir]);
    assert.equal((pemOut.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 1);
    writeFileSync(f('after.pem'), pemOut.stdout);
    assert.match((await cli(['svid', 'verify', '--bundle', f('after.pem'), f('web.pem')])).stderr, /ERR_SVID_UNTRUSTED/);
    assert.equal((await cli(['svid', 'verify', '--bundle', f('after.pem'), f('api.pem')])).code, 0);

    // JWT-SVIDs.
    const token = (await cli(['jwt-svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://example.org/web', '--audience', 'api', '--audience', 'db'])).stdout.trim();
    assert.equal(token.split('.').length, 3);
    await cli(['ca', 'bundle', '--dir', dir, '--format', 'jwks', '--out', f('b.jwks')]);
    const jv = await cli(['jwt-svid', 'verify', '--bundle', f('b.jwks'), '--audience', 'db', token, '-o', 'json']);
    assert.equal(jv.code, 0, jv.stderr);
    assert.deepEqual(JSON.parse(jv.stdout).audience, ['api', 'db']);
    writeFileSync(f('tok'), token);
    assert.match((await cli(['jwt-svid', 'verify', '--bundle', f('b.jwks'), '--audience', 'other', `@${f('tok')}`])).stderr, /ERR_JWT_SVID_AUDIENCE/);
    assert.match((await cli(['jwt-svid', 'verify', '--bundle', f('b.jwks'), '--audience', 'api', '--at', '2026-06-01T00:06:00Z', token])).stderr, /ERR_JWT_SVID_EXPIRED/);

    // `-o json` works on jwt-svid mint like on every other verb that prints a result; errors follow it.
    const jm = await cli(['jwt-svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://example.org/web', '--audience', 'api', '--ttl', '2m', '-o', 'json']);
    assert.equal(jm.code, 0, jm.stderr);
    const minted = JSON.parse(jm.stdout) as { token: string; spiffeId: string; audience: string[]; expiresAt: string };
    assert.equal(minted.spiffeId, 'spiffe://example.org/web');
    assert.deepEqual(minted.audience, ['api']);
    assert.equal(minted.expiresAt, '2026-06-01T00:02:00.000Z');
    assert.equal((await cli(['jwt-svid', 'verify', '--bundle', f('b.jwks'), '--audience', 'api', minted.token])).code, 0);
    const bad = await cli(['jwt-svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://other.org/web', '--audience', 'api', '-o', 'json']);
    assert.equal(bad.code, 1);
    assert.match(JSON.parse(bad.stdout).error.code, /^ERR_/);
  } finally {
    t.cleanup();
  }
});

test('ca init without WARD_MASTER_KEY creates a 0600 master key file in the directory', async () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'ca');
    const r = await runCli(['ca', 'init', '--dir', dir, '--trust-domain', 'example.org'], { clock: new ManualClock(T0), env: {} });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
    assert.equal((await runCli(['ca', 'show', '--dir', dir], { env: {} })).code, 0);
    assert.match((await runCli(['ca', 'show', '--dir', dir, '--key-provider', 'env'], { env: {} })).stderr, /ERR_MASTER_KEY_MISSING/);
    assert.match((await runCli(['ca', 'show', '--dir', join(t.dir, 'none')], { env: {} })).stderr, /ERR_CA_NOT_FOUND/);
  } finally {
    t.cleanup();
  }
});

test('mutating ca commands hold a directory lock: a live holder blocks, a dead holder is taken over', async () => {
  const t = tempDir();
  const env = { WARD_MASTER_KEY: randomBytes(32).toString('base64') };
  const clock = new ManualClock(T0);
  try {
    const dir = join(t.dir, 'ca');
    assert.equal((await runCli(['ca', 'init', '--dir', dir, '--trust-domain', 'example.org'], { clock, env })).code, 0);
    assert.equal(existsSync(join(dir, 'ca.lock')), false, 'released after the command');
    writeFileSync(join(dir, 'ca.lock'), String(process.pid));
    const blocked = await runCli(['ca', 'rotate', 'prepare', '--dir', dir], { clock, env });
    assert.match(blocked.stderr, /ERR_CA_LOCKED/);
    assert.equal(JSON.parse(readFileSync(join(dir, 'ca.json'), 'utf8')).authorities.length, 1, 'state untouched');
    // A pid that cannot exist: the lock is stale and is taken over.
    writeFileSync(join(dir, 'ca.lock'), '2147483646');
    assert.equal((await runCli(['ca', 'rotate', 'prepare', '--dir', dir], { clock, env })).code, 0);
    assert.equal(existsSync(join(dir, 'ca.lock')), false);
    const missing = join(t.dir, 'missing');
    assert.match((await runCli(['ca', 'rotate', 'prepare', '--dir', missing], { clock, env })).stderr, /ERR_CA_NOT_FOUND/);
    assert.equal(existsSync(missing), false, 'no directory created by a failed mutation');
  } finally {
    t.cleanup();
  }
});
