import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { ManualClock } from '../../../../src/core/clock.js';
import { AwsIidAttestor, parseAwsIidConfig, createAwsIidAttestor } from '../../../../src/platforms/aws/attestor.js';
import { ImdsCollector } from '../../../../src/platforms/aws/imds.js';
import { decodeBerOctetString, decodeOid, parsePkcs7 } from '../../../../src/platforms/aws/pkcs7.js';
import { parseInstanceIdentityDocument } from '../../../../src/platforms/aws/document.js';
import { PlatformError } from '../../../../src/platforms/errors.js';
import { exampleInstance, FakeImds, renderDocument, signDocument } from '../../../fakes/ec2-imds/server.js';
import { makeSelfSigned, TempDir, type TestCert } from '../../../fakes/pki.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

const dir = new TempDir();
let aws: TestCert;
let attacker: TestCert;
let counter = 0;
const validity = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2027-01-01T00:00:00Z') };

before(async () => {
  aws = await makeSelfSigned(dir, { name: 'C=US, ST=Washington, L=Seattle, O=Amazon Web Services LLC', kind: 'rsa2048', serial: '00c2a1b2c3d4e5f601', ...validity });
  // Same subject and serial as AWS's: only the key differs.
  attacker = await makeSelfSigned(dir, { name: 'C=US, ST=Washington, L=Seattle, O=Amazon Web Services LLC', kind: 'rsa2048', serial: '00c2a1b2c3d4e5f601', ...validity });
});
after(() => dir.remove());

function evidence(signer: TestCert, n = ++counter): { document: string; signature: string } {
  const document = renderDocument(exampleInstance(n));
  return { document, signature: signDocument(dir, signer, document) };
}

function attestor(extra: Record<string, unknown> = {}): AwsIidAttestor {
  return new AwsIidAttestor(parseAwsIidConfig({ certificates: [aws.certPem], ...extra }, 'attestors.aws_iid'));
}

attestorContract('aws_iid', async () => ({
  attestor: attestor(),
  oneTime: true,
  valid: async () => evidence(aws),
  forged: async () => evidence(attacker),
  expired: async (_ctx, clock) => {
    clock.set('2027-01-02T00:00:00Z');
    return evidence(aws);
  },
  expectSelectors: ['aws_iid:account:123456789012', 'aws_iid:region:us-west-2', 'aws_iid:az:us-west-2b', 'aws_iid:image-id:ami-5fb8c835', 'aws_iid:instance-type:t2.micro'],
  expectAttributes: { 'aws.account': '123456789012', 'aws.region': 'us-west-2', 'aws.az': 'us-west-2b', 'aws.image_id': 'ami-5fb8c835' },
  close: async () => {},
}));

test("the fake's signature passes AWS's own OpenSSL verification recipe", () => {
  const ev = evidence(aws);
  const sig = dir.file('sig.pem', `-----BEGIN PKCS7-----\n${ev.signature}\n-----END PKCS7-----\n`);
  const doc = dir.file('doc.json', ev.document);
  const out = execFileSync('openssl', ['smime', '-verify', '-in', sig, '-inform', 'PEM', '-content', doc, '-certfile', aws.certPath, '-noverify'], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(out.toString('utf8'), ev.document);
});

test('the agent id is the account/region/instance triple, as SPIRE names it', async () => {
  const clock = new ManualClock(START);
  const ev = evidence(aws, 4242);
  const result = await attestor().attest(ev, newContext(clock));
  const id = exampleInstance(4242).instanceId;
  assert.equal(result.agentId, `spiffe://${TRUST_DOMAIN}/ward/agent/aws_iid/123456789012/us-west-2/${id}`);
  assert.equal(result.attributes['aws.instance_id']?.value, id);
});

test('a tampered document (one field changed after signing) is forged', async () => {
  const clock = new ManualClock(START);
  const ev = evidence(aws);
  const tampered = { ...ev, document: ev.document.replace('"123456789012"', '"210987654321"') };
  assert.notEqual(tampered.document, ev.document);
  await rejectsWith(attestor().attest(tampered, newContext(clock)), 'ERR_ATTEST_FORGED');
  // Whitespace-only changes are changes too: the signature covers the exact bytes.
  await rejectsWith(attestor().attest({ ...ev, document: `${ev.document}\n` }, newContext(clock)), 'ERR_ATTEST_FORGED');
});

test('a forged attempt does not burn the instance: the genuine document still attests once', async () => {
  const clock = new ManualClock(START);
  const ctx = newContext(clock);
  const n = ++counter;
  await rejectsWith(attestor().attest(evidence(attacker, n), ctx), 'ERR_ATTEST_FORGED');
  await attestor().attest(evidence(aws, n), ctx);
  await rejectsWith(attestor().attest(evidence(aws, n), ctx), 'ERR_ATTEST_REPLAYED');
});

test('account and region allow-lists; maxInstanceAge', async () => {
  const clock = new ManualClock(START);
  await rejectsWith(attestor({ accounts: ['999999999999'] }).attest(evidence(aws), newContext(clock)), 'ERR_ATTEST_NOT_ALLOWED');
  await rejectsWith(attestor({ regions: ['eu-west-1'] }).attest(evidence(aws), newContext(clock)), 'ERR_ATTEST_NOT_ALLOWED');
  await attestor({ accounts: ['123456789012'], regions: ['us-west-2'] }).attest(evidence(aws), newContext(clock));
  // pendingTime 2026-02-19T16:32:11Z; START is 2026-03-01.
  await rejectsWith(attestor({ maxInstanceAge: '7d' }).attest(evidence(aws), newContext(clock)), 'ERR_ATTEST_EXPIRED');
  await attestor({ maxInstanceAge: '30d' }).attest(evidence(aws), newContext(clock));
});

test('config is validated at the edge', () => {
  assert.throws(() => createAwsIidAttestor({}, 'a'), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => createAwsIidAttestor({ certificates: ['nope'] }, 'a'), { code: 'ERR_CONFIG_INVALID' });
  assert.throws(() => createAwsIidAttestor({ certificates: [aws.certPem], accounts: ['12'] }, 'a'), { code: 'ERR_CONFIG_INVALID' });
});

test('the IMDSv2 collector fetches a session token, then the document and signature; the server verifies them', async () => {
  const ev = evidence(aws);
  const imds = await FakeImds.start(ev.document, ev.signature);
  try {
    const collected = await new ImdsCollector({ endpoint: imds.url }).collect();
    assert.equal(collected.document, ev.document);
    assert.equal(imds.refused, 0);
    const result = await attestor().attest(collected, newContext(new ManualClock(START)));
    assert.equal(result.attestor, 'aws_iid');
    // IMDSv1-style GETs without a session token are refused, as with HttpTokens=required.
    const res = await fetch(`${imds.url}/latest/dynamic/instance-identity/document`);
    assert.equal(res.status, 401);
  } finally {
    await imds.close();
  }
});

test('the collector fails with a platform code when IMDS is unreachable', async () => {
  const imds = await FakeImds.start('{}', '');
  const url = imds.url;
  await imds.close();
  await assert.rejects(new ImdsCollector({ endpoint: url, timeoutMs: 500 }).collect(), { code: 'ERR_PLATFORM_UNREACHABLE' });
});

test('fuzz: the PKCS#7 parser only ever fails with ERR_ATTEST_MALFORMED on arbitrary and mutated DER', () => {
  const der = Buffer.from(evidence(aws).signature, 'base64');
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
      const copy = Buffer.from(der);
      copy[i] = b;
      return new Uint8Array(copy);
    })), (bytes) => {
      try {
        parsePkcs7(Buffer.from(bytes));
        return true;
      } catch (error) {
        return error instanceof PlatformError && error.code === 'ERR_ATTEST_MALFORMED';
      }
    }),
    { numRuns: 400 },
  );
});

test('fuzz: a single-byte corruption of the signature fails, unless it hit an unsigned field and the facts are unchanged', async () => {
  const ev = evidence(aws);
  const der = Buffer.from(ev.signature, 'base64');
  const clock = new ManualClock(START);
  const genuine = await attestor().attest(ev, newContext(clock));
  let unsignedHits = 0;
  await fc.assert(
    fc.asyncProperty(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 }), async (i, x) => {
      const copy = Buffer.from(der);
      copy[i] = copy[i]! ^ x;
      try {
        const r = await attestor().attest({ document: ev.document, signature: copy.toString('base64') }, newContext(clock));
        // CMS leaves some fields outside the signature (SignedData.digestAlgorithms, the signer's
        // issuer name): flipping those may still verify, but only ever for the same document.
        unsignedHits++;
        assert.deepEqual(r, genuine);
        return true;
      } catch (error) {
        return error instanceof PlatformError && ['ERR_ATTEST_MALFORMED', 'ERR_ATTEST_FORGED'].includes(error.code);
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(unsignedHits < 150, `${unsignedHits} of 300 corruptions still verified`);
});

test('fuzz: the document parser accepts only well-formed documents', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 2 }), fc.record({ accountId: fc.string(), region: fc.string(), instanceId: fc.string(), pendingTime: fc.string() }).map((o) => JSON.stringify(o))), (text) => {
      try {
        const doc = parseInstanceIdentityDocument(text);
        return /^\d{12}$/.test(doc.accountId) && /^i-[0-9a-f]+$/.test(doc.instanceId);
      } catch (error) {
        return error instanceof PlatformError && error.code === 'ERR_ATTEST_MALFORMED';
      }
    }),
    { numRuns: 300 },
  );
  assert.equal(decodeOid(Buffer.from('06092a864886f70d010701', 'hex')), '1.2.840.113549.1.7.1');
});

test('the signature has the shape IMDS serves: attached document, BER indefinite length, SHA-256', () => {
  const ev = evidence(aws);
  // 30 80 06 09 <signedData> a0 80 30 80 02 01 01 31 0f 30 0d 06 09 <sha256> 05 00 ...
  assert.ok(ev.signature.replace(/\s+/g, '').startsWith('MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwGggCSA'), ev.signature.slice(0, 80));
});

test('a detached signature over the same document verifies too; a detached one over another does not', async () => {
  const clock = new ManualClock(START);
  const document = renderDocument(exampleInstance(++counter));
  const docPath = dir.file(`detached-${counter}.json`, document);
  const detached = execFileSync('openssl', ['smime', '-sign', '-binary', '-nocerts', '-md', 'sha256', '-signer', aws.certPath, '-inkey', aws.keyPath, '-in', docPath, '-outform', 'PEM']).toString('utf8').replace(/-----(BEGIN|END) PKCS7-----/g, '').trim();
  await attestor().attest({ document, signature: detached }, newContext(clock));
  const other = renderDocument(exampleInstance(++counter));
  await rejectsWith(attestor().attest({ document: other, signature: detached }, newContext(clock)), 'ERR_ATTEST_FORGED');
});

test('fuzz: the BER OCTET STRING decoder returns or throws, never loops or over-reads', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const buf = Buffer.from(bytes);
      try {
        const { value, end } = decodeBerOctetString(buf, 0, 0);
        return end <= buf.length && value.length <= buf.length;
      } catch (error) {
        return error instanceof Error;
      }
    }),
    { numRuns: 1000 },
  );
  // Constructed, indefinite: 24 80 | 04 02 "ab" | 24 03 04 01 "c" | 00 00
  assert.equal(decodeBerOctetString(Buffer.from('2480040261622403040163' + '0000', 'hex'), 0, 0).value.toString(), 'abc');
});
