import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { ManualClock } from '../../../../src/core/clock.js';
import { parseX509PopConfig, X509PopAttestor, X509PopCollector } from '../../../../src/platforms/x509pop/attestor.js';
import { VsphereAttestor, parseVsphereConfig } from '../../../../src/platforms/vsphere/attestor.js';
import { makeChain, type TestChain } from '../../../fakes/pki.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

const validity = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2027-01-01T00:00:00Z') };
let chain: TestChain;
let otherCa: TestChain;

before(async () => {
  chain = await makeChain(validity);
  otherCa = await makeChain(validity);
});

const attestor = (roots = [chain.rootPem]): X509PopAttestor => new X509PopAttestor(parseX509PopConfig({ caBundle: roots }, 'attestors.x509pop'));
const collector = (c: TestChain, clock: ManualClock, td = TRUST_DOMAIN): X509PopCollector =>
  new X509PopCollector([c.leafPem, c.intermediatePem], createPrivateKey(c.leafKeyPem), td, clock);

attestorContract('x509pop', async () => {
  if (!chain) chain = await makeChain(validity);
  if (!otherCa) otherCa = await makeChain(validity);
  let tick = 0;
  return {
    attestor: attestor(),
    oneTime: true,
    freshSubjectEachCall: false,
    // Each proof is a fresh signature (ECDSA is randomized), all over the same certificate.
    valid: async (ctx) => collector(chain, new ManualClock(ctx.clock.now() + tick++)).collect(),
    forged: async (ctx) => {
      // The real chain, signed with a key that is not the leaf's.
      const ev = await collector(chain, new ManualClock(ctx.clock.now())).collect();
      const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const fake = await new X509PopCollector([chain.leafPem, chain.intermediatePem], stranger, TRUST_DOMAIN, new ManualClock(ctx.clock.now())).collect();
      return { ...ev, signature: fake.signature };
    },
    expired: async (_ctx, clock) => {
      clock.set('2027-01-02T00:00:00Z');
      return collector(chain, clock).collect();
    },
    expectSelectors: ['x509pop:subject-cn:build-01.example.org'],
    expectAttributes: { 'x509.subject.cn': 'build-01.example.org' },
    close: async () => {},
  };
});

/** The other valid ECDSA P-256 signature over the same message: (r, s) -> (r, n - s). */
function malleate(signatureB64: string): string {
  const der = Buffer.from(signatureB64, 'base64');
  const rLen = der[3]!;
  const r = der.subarray(4, 4 + rLen);
  const s = BigInt(`0x${der.subarray(6 + rLen).toString('hex')}`);
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  let hex = (n - s).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let sBytes = Buffer.from(hex, 'hex');
  if (sBytes[0]! & 0x80) sBytes = Buffer.concat([Buffer.from([0]), sBytes]);
  const body = Buffer.concat([Buffer.from([0x02, r.length]), r, Buffer.from([0x02, sBytes.length]), sBytes]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]).toString('base64');
}

test('replay: a captured proof re-sent with its malleated ECDSA signature (r, n - s) is still a replay', async () => {
  const clock = new ManualClock(START);
  const a = attestor();
  const ctx = newContext(clock);
  const evidence = await collector(chain, clock).collect();
  await a.attest(evidence, ctx);
  const twin = { ...evidence, signature: malleate(evidence.signature) };
  assert.notEqual(twin.signature, evidence.signature);
  await rejectsWith(a.attest(twin, ctx), 'ERR_ATTEST_REPLAYED');
});

test('same certificate, fresh proof: the same agent id', async () => {
  const clock = new ManualClock(START);
  const a = attestor();
  const r1 = await a.attest(await collector(chain, clock).collect(), newContext(clock));
  clock.advance(1000);
  const r2 = await a.attest(await collector(chain, clock).collect(), newContext(clock));
  assert.equal(r1.agentId, r2.agentId);
  assert.match(r1.agentId, new RegExp(`^spiffe://${TRUST_DOMAIN}/ward/agent/x509pop/[0-9a-f]{64}$`));
});

test('a chain to another CA, a proof for another trust domain, and a stale proof are refused', async () => {
  const clock = new ManualClock(START);
  await rejectsWith(attestor().attest(await collector(otherCa, clock).collect(), newContext(clock)), 'ERR_ATTEST_FORGED');
  await rejectsWith(attestor().attest(await collector(chain, clock, 'other.org').collect(), newContext(clock)), 'ERR_ATTEST_FORGED');
  const ev = await collector(chain, clock).collect();
  clock.advance(61_000);
  await rejectsWith(attestor().attest(ev, newContext(clock)), 'ERR_ATTEST_EXPIRED');
  // A leaf presented without its intermediate does not chain to the root.
  const leafOnly = await new X509PopCollector([chain.leafPem], createPrivateKey(chain.leafKeyPem), TRUST_DOMAIN, clock).collect();
  await rejectsWith(attestor().attest(leafOnly, newContext(clock)), 'ERR_ATTEST_FORGED');
  // Trusting the intermediate directly is allowed.
  await attestor([chain.intermediatePem]).attest(leafOnly, newContext(clock));
});

test('a leaf certificate cannot act as an intermediate', async () => {
  const clock = new ManualClock(START);
  const ev = await collector(chain, clock).collect();
  const bogus = { ...ev, certificates: [ev.certificates[0]!, ev.certificates[0]!, ev.certificates[1]!] };
  await rejectsWith(attestor().attest(bogus, newContext(clock)), 'ERR_ATTEST_FORGED');
});

test('config requires CA certificates', () => {
  assert.throws(() => parseX509PopConfig({}, 'a'), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => parseX509PopConfig({ caBundle: [chain.leafPem] }, 'a'), { code: 'ERR_CONFIG_INVALID' });
});

test('an x509pop node is an acceptable binding for vsphere hints by default', () => {
  const v = parseVsphereConfig({ url: 'https://vcenter', username: 'u', password: 'p' }, 'a');
  assert.ok(v.bindTo.includes('x509pop'));
  assert.ok(new VsphereAttestor(v));
});
