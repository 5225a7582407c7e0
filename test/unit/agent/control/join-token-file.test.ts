// `--join-token-file`: the join token from a file (kept out of the command line), exactly one
// attestor, clear ERR_CONTROL_CONFIG errors that never echo the file's content; and the flag
// reaches the options through the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseAgentConfig } from '../../../../src/agent/config.js';
import { ControlError } from '../../../../src/agent/control/errors.js';
import { resolveControlOptions } from '../../../../src/agent/control/options.js';
import { makeSelfSigned, TempDir } from '../../../fakes/pki.js';
import { runCli } from '../../../helpers/cli.js';

const isConfig = (path: string) => (e: unknown): boolean => e instanceof ControlError && e.code === 'ERR_CONTROL_CONFIG' && e.details?.path === path;

test('--join-token-file: the token is read from the file (whitespace and newline trimmed); exactly one attestor; unreadable, empty or multi-token files are refused without echoing them', async (t) => {
  const tmp = new TempDir();
  t.after(() => tmp.remove());
  const dir = tmp.path;
  tmp.file('bundle.pem', (await makeSelfSigned(tmp, { name: 'CN=ward-ca', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01') })).certPem);
  const proxy = parseAgentConfig({ inbound: [{ port: 8443, appPort: 8080, protocol: 'http' }] }, dir, 'control');
  const base = { server: 'https://127.0.0.1:7401', serverBundle: 'bundle.pem', trustDomain: 'ward.test', service: 'orders' };
  tmp.file('token', '  ward_jt_0123456789abcdef\n');
  const opts = resolveControlOptions({ ...base, joinTokenFile: 'token' }, proxy, dir);
  assert.deepEqual(opts.control.attestor, { attestor: 'join_token', token: 'ward_jt_0123456789abcdef' });
  assert.throws(() => resolveControlOptions({ ...base, joinTokenFile: 'token', joinToken: 'x' }, proxy, dir), isConfig('joinToken'));
  assert.throws(() => resolveControlOptions({ ...base, joinTokenFile: 'token', k8sCluster: 'c' }, proxy, dir), isConfig('joinToken'));
  assert.throws(() => resolveControlOptions(base, proxy, dir), isConfig('joinToken'));
  assert.throws(() => resolveControlOptions({ ...base, joinTokenFile: 'missing' }, proxy, dir), (e: unknown) => isConfig('joinTokenFile')(e) && /ENOENT/.test((e as Error).message));
  for (const [name, content] of [['empty', '\n'], ['two', 'secret-one secret-two\n'], ['lines', 'secret-one\nsecret-two\n']] as const) {
    tmp.file(name, content);
    assert.throws(() => resolveControlOptions({ ...base, joinTokenFile: name }, proxy, dir), (e: unknown) => isConfig('joinTokenFile')(e) && !(e as Error).message.includes('secret'), name);
  }
});

test('ward agent --join-token-file reaches the control options (a missing file is ERR_CONTROL_CONFIG before anything starts)', async (t) => {
  const tmp = new TempDir();
  t.after(() => tmp.remove());
  tmp.file('bundle.pem', (await makeSelfSigned(tmp, { name: 'CN=ward-ca', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01') })).certPem);
  const r = await runCli(['agent', '--server', 'https://127.0.0.1:1', '--server-bundle', join(tmp.path, 'bundle.pem'), '--trust-domain', 'ward.test', '--join-token-file', join(tmp.path, 'nope'), '--service', 'orders', '--app-port', '8080']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERR_CONTROL_CONFIG: joinTokenFile: cannot read .*nope: ENOENT/);
});
