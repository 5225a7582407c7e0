import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { ManualClock } from '../../../../src/core/clock.js';
import { issueJoinToken } from '../../../../src/platforms/join-token/token.js';
import { AttestorRegistry, BUILTIN_ATTESTORS, createAttestorRegistry } from '../../../../src/platforms/registry.js';
import { JoinTokenAttestor } from '../../../../src/platforms/join-token/attestor.js';
import { newContext, rejectsWith, START } from './contract.js';

test('every built-in has a folder, a reference section, and a contract test file', () => {
  const doc = readFileSync('docs/reference/attestors.md', 'utf8');
  const tests = readdirSync('test/unit/platforms/attestors');
  for (const [name, plugin] of Object.entries(BUILTIN_ATTESTORS)) {
    assert.equal(plugin.name, name);
    assert.match(doc, new RegExp(`^## \`${name}\``, 'm'), `docs/reference/attestors.md has a section for ${name}`);
    const file = `${name.replace(/_/g, '-')}.test.ts`;
    assert.ok(tests.includes(file), `${file} exists`);
    assert.match(readFileSync(`test/unit/platforms/attestors/${file}`, 'utf8'), new RegExp(`attestorContract\\('${name}'`), `${file} runs the contract`);
  }
});

test('the registry builds from config, dispatches envelopes, and refuses unknown attestors', async () => {
  const registry = createAttestorRegistry({ join_token: {}, ecs: {}, host: { bindTo: ['join_token'] } });
  assert.deepEqual(registry.names(), ['ecs', 'host', 'join_token']);
  const clock = new ManualClock(START);
  const ctx = newContext(clock);
  const { token } = await issueJoinToken({ clock, state: ctx.state });
  const r = await registry.attest({ attestor: 'join_token', data: { token } }, ctx);
  assert.equal(r.attestor, 'join_token');
  await rejectsWith(registry.attest({ attestor: 'aws_iid', data: {} }, ctx), 'ERR_ATTEST_UNKNOWN_ATTESTOR');
  await rejectsWith(registry.attest({ attestor: '__proto__', data: {} }, ctx), 'ERR_ATTEST_MALFORMED');
  await rejectsWith(registry.attest({ attestor: 'constructor', data: {} }, ctx), 'ERR_ATTEST_UNKNOWN_ATTESTOR');
  await rejectsWith(registry.attest({ data: {} }, ctx), 'ERR_ATTEST_MALFORMED');
  await rejectsWith(registry.attest({ attestor: 'join_token' }, ctx), 'ERR_ATTEST_MALFORMED');
});

test('configuration errors name the path', () => {
  assert.throws(() => createAttestorRegistry({ nope: {} }), (e: { code: string; details: { path: string } }) => e.code === 'ERR_CONFIG_INVALID' && e.details.path === 'attestors.nope');
  assert.throws(() => createAttestorRegistry({ toString: {} }), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => createAttestorRegistry({ join_token: { ttl: 5 } }), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => createAttestorRegistry({ k8s_psat: { clusters: {} } }), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => createAttestorRegistry({ vsphere: { url: 'ftp://x', username: 'u', password: 'p' } }), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => createAttestorRegistry([]), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => new AttestorRegistry([new JoinTokenAttestor(), new JoinTokenAttestor()]));
});
