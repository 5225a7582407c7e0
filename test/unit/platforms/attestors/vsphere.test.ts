import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../../src/core/clock.js';
import type { AttestedNode } from '../../../../src/platforms/attestor.js';
import { DmiCollector, parseVsphereConfig, VsphereAttestor } from '../../../../src/platforms/vsphere/attestor.js';
import { JoinTokenAttestor } from '../../../../src/platforms/join-token/attestor.js';
import { issueJoinToken } from '../../../../src/platforms/join-token/token.js';
import { FakeVcenter, type FakeVm } from '../../../fakes/vcenter/server.js';
import { makeSelfSigned, TempDir, type TestCert } from '../../../fakes/pki.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

const dir = new TempDir();
let tls: TestCert;
let vc: FakeVcenter;
const web: FakeVm = { moid: 'vm-42', name: 'web-01', biosUuid: '4210e1c7-9a3f-6d2b-8e51-0c7f3a9b2d64', instanceUuid: '50109a5c-2b7e-4f3a-9c1d-8e6f4a2b0c9d', tags: { env: ['production'], team: ['payments', 'sre'] } };
const node: AttestedNode = { attestor: 'join_token', agentId: `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/0123456789abcdef0123456789abcdef`, selectors: ['join_token:id:0123456789abcdef0123456789abcdef'], attributes: {} };

before(async () => {
  tls = await makeSelfSigned(dir, { name: 'CN=vcenter.example.com', kind: 'p256', notBefore: new Date('2020-01-01'), notAfter: new Date('2099-01-01'), san: ['127.0.0.1'] });
  vc = await FakeVcenter.start(tls);
  vc.addVm(web);
  vc.addVm({ moid: 'vm-43', name: 'db-01', biosUuid: '4210aaaa-bbbb-cccc-dddd-eeeeffff0000', instanceUuid: '5010aaaa-bbbb-cccc-dddd-eeeeffff0000', tags: { env: ['production'] } });
  vc.addVm({ moid: 'vm-44', name: 'dup', biosUuid: '4210aaaa-bbbb-cccc-dddd-eeeeffff0001', instanceUuid: '5010aaaa-bbbb-cccc-dddd-eeeeffff0001', tags: {} });
  vc.addVm({ moid: 'vm-45', name: 'dup', biosUuid: '4210aaaa-bbbb-cccc-dddd-eeeeffff0002', instanceUuid: '5010aaaa-bbbb-cccc-dddd-eeeeffff0002', tags: {} });
});
after(async () => {
  await vc.close();
  dir.remove();
});

const attestor = (url = vc.url): VsphereAttestor => new VsphereAttestor(parseVsphereConfig({ url, username: 'ward@vsphere.local', password: 'secret-pw', caPem: tls.certPem }, 'attestors.vsphere'));

attestorContract('vsphere', async () => {
  const down = await FakeVcenter.start(tls);
  down.down = true;
  return {
    attestor: attestor(),
    downAttestor: attestor(down.url),
    node,
    oneTime: false,
    valid: async () => ({ vmName: 'web-01', biosUuid: web.biosUuid.toUpperCase() }),
    // The guest claims a VM name whose vCenter UUID differs (a copied hostname).
    mismatch: async () => ({ vmName: 'db-01', biosUuid: web.biosUuid }),
    upstreamDown: async () => ({ vmName: 'web-01', biosUuid: web.biosUuid }),
    expectSelectors: ['vsphere:vm-name:web-01', `vsphere:vm-uuid:${web.biosUuid}`, 'vsphere:vm-moid:vm-42', 'vsphere:tag:env:production', 'vsphere:tag:team:payments', 'vsphere:tag:team:sre'],
    expectAttributes: { 'vm.uuid': web.biosUuid, 'vm.name': 'web-01', 'vm.tag.env': 'production', 'vm.tag.team': ['payments', 'sre'] },
    close: async () => down.close(),
  };
});

test('a join token issued for a VM UUID binds the hint: another UUID is a mismatch', async () => {
  const clock = new ManualClock(START);
  const ctx = newContext(clock);
  const { token } = await issueJoinToken({ clock, state: ctx.state, attributes: { 'vm.uuid': web.biosUuid } });
  const n = await new JoinTokenAttestor().attest({ token }, ctx);
  const bound = { ...ctx, node: n };
  const r = await attestor().attest({ vmName: 'web-01', biosUuid: web.biosUuid }, bound);
  assert.equal(r.agentId, n.agentId);
  // db-01 really has this UUID in vCenter, but the token was issued for web-01's.
  await rejectsWith(attestor().attest({ vmName: 'db-01', biosUuid: '4210aaaa-bbbb-cccc-dddd-eeeeffff0000' }, bound), 'ERR_ATTEST_MISMATCH');
});

test('unknown and ambiguous VM names are mismatches; an expired session is renewed once', async () => {
  const clock = new ManualClock(START);
  const a = attestor();
  await rejectsWith(a.attest({ vmName: 'nope', biosUuid: web.biosUuid }, newContext(clock, node)), 'ERR_ATTEST_MISMATCH');
  await rejectsWith(a.attest({ vmName: 'dup', biosUuid: '4210aaaa-bbbb-cccc-dddd-eeeeffff0001' }, newContext(clock, node)), 'ERR_ATTEST_MISMATCH');
  const before = vc.logins;
  vc.expireSessions();
  await a.attest({ vmName: 'web-01', biosUuid: web.biosUuid }, newContext(clock, node));
  assert.equal(vc.logins, before + 1);
});

test('wrong vCenter credentials fail closed as upstream', async () => {
  const a = new VsphereAttestor(parseVsphereConfig({ url: vc.url, username: 'ward@vsphere.local', password: 'wrong', caPem: tls.certPem }, 'a'));
  const err = await rejectsWith(a.attest({ vmName: 'web-01', biosUuid: web.biosUuid }, newContext(new ManualClock(START), node)), 'ERR_ATTEST_UPSTREAM');
  assert.ok(!JSON.stringify({ m: err.message, d: err.details }).includes('wrong'));
});

test('the DMI collector reads the SMBIOS UUID the guest sees', async () => {
  const path = dir.file('product_uuid', `${web.biosUuid.toUpperCase()}\n`);
  const ev = await new DmiCollector('web-01', path).collect();
  assert.deepEqual(ev, { vmName: 'web-01', biosUuid: web.biosUuid });
  const r = await attestor().attest(ev, newContext(new ManualClock(START), node));
  assert.equal(r.attributes['vm.moid']?.value, 'vm-42');
});
