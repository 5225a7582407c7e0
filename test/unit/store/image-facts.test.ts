// The path a scan or a provenance document takes: parser/verifier → store → every workload
// of the image sees the new attributes. Runs on both dialects.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { importScanReport } from '../../../src/platforms/scanners/index.js';
import { ProvenanceVerifier } from '../../../src/platforms/provenance/index.js';
import { envelope, makeKey, statement } from '../platforms/provenance/sign.js';
import { postgresHarness, sqliteHarness, type HarnessFactory } from './harness.js';

const DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
const TD = 'spiffe://prod.example';

for (const [name, factory] of [['sqlite', sqliteHarness], ['postgres', postgresHarness]] as Array<[string, HarnessFactory]>) {
  describe(`image facts (${name})`, () => {
    test('a scan, then a VEX-adjusted rescan, then provenance reach every workload of the image', async () => {
      const h = await factory();
      try {
        const { store, clock } = h;
        for (const sa of ['orders', 'orders-canary']) await store.workloads.upsert({ spiffeId: `${TD}/ns/shop/sa/${sa}`, agentId: 'node-1', imageDigest: DIGEST });
        const heard: number[] = [];
        await store.onChange((v) => heard.push(v));

        const scan = importScanReport(readFileSync('test/fixtures/scans/trivy-orders.json'), { observedAt: clock.now() });
        for (const d of scan.imageDigests) await store.images.putScan({ imageDigest: d, scanner: scan.format, attributes: scan.attributes, summary: scan.summary });
        for (const sa of ['orders', 'orders-canary']) assert.equal((await store.attributes.forWorkload(`${TD}/ns/shop/sa/${sa}`))['vuln.critical']?.value, 1);

        clock.advance(60_000);
        const rescan = importScanReport(readFileSync('test/fixtures/scans/trivy-orders.json'), { observedAt: clock.now(), vex: [readFileSync('test/fixtures/scans/vex-orders.cdx.json')] });
        await store.images.putScan({ imageDigest: DIGEST, scanner: rescan.format, attributes: rescan.attributes, summary: rescan.summary });
        const doc = await store.attributes.forWorkload(`${TD}/ns/shop/sa/orders-canary`);
        assert.equal(doc['vuln.critical']?.value, 0);
        assert.equal(doc['vuln.critical']?.source, 'scan:trivy');
        assert.equal(doc['vuln.critical']?.observedAt, clock.now());

        const key = makeKey('ecdsa-p256');
        const verifier = new ProvenanceVerifier({ keys: [{ keyid: 'ci', publicKey: key.publicPem }] });
        const prov = verifier.verify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key, keyid: 'ci' }]), clock.now());
        for (const d of prov.subjectDigests) await store.images.putProvenance({ imageDigest: d, attributes: prov.attributes, statement: prov.facts, verified: prov.verified });
        const full = await store.attributes.forWorkload(`${TD}/ns/shop/sa/orders`);
        assert.equal(full['build.verified']?.value, true);
        assert.equal(full['build.repo']?.value, 'https://github.com/acme/orders');
        assert.deepEqual((await store.images.scans(DIGEST))[0]?.summary, JSON.parse(JSON.stringify(rescan.summary)));

        const latest = await store.changes.latest();
        for (let i = 0; i < 100 && !heard.includes(latest); i++) await new Promise((r) => setTimeout(r, 20));
        assert.ok(heard.includes(latest), 'watchers were not told');
        const kinds = (await store.changes.since(0)).changes.filter((c) => c.kind === 'image').map((c) => c.resourceId);
        assert.deepEqual(kinds, [DIGEST, DIGEST, DIGEST]);
      } finally {
        await h.cleanup();
      }
    });
  });
}
