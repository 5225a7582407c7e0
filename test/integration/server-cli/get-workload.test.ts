// `ward get workload <id>` shows every attribute of a workload with its source and the time it
// was observed: attestation facts, a scan's vuln.* and verified build.* provenance, in YAML,
// JSON and the text table, against a real server on both stores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../../helpers/cli.js';
import { ScriptedAgent, TRUST_DOMAIN, dsseEnvelope, startTestServer } from '../server-lifecycle/harness.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/shop/orders`;
const DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
const TRIVY = readFileSync('test/fixtures/scans/trivy-orders.json', 'utf8');
const STATEMENT = JSON.parse(readFileSync('test/fixtures/provenance/slsa-v1-github-container.statement.json', 'utf8')) as unknown;

interface ShownAttribute { value: unknown; source: string; observedAt: number }

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: ward get workload -o yaml|json|text shows every attribute with its source and time`, { timeout: 60_000 }, async (t) => {
    const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ts = await startTestServer(kind, { provenance: { keys: [{ keyid: 'release', publicKey: signing.publicKey.export({ type: 'spki', format: 'pem' }).toString() }] } });
    const agent = new ScriptedAgent(ts.server);
    t.after(async () => {
      agent.close();
      await ts.cleanup();
    });
    const jt = await ts.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders', 'image.digest': DIGEST } });
    await agent.attest(jt.token);
    await ts.admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name: 'orders' }, spec: { spiffeId: ORDERS, parentId: '*', nodeSelectors: ['join_token:host-name:vm-orders'] } }]);
    await agent.workloadSvid(ORDERS);
    await ts.admin.importScan(TRIVY);
    await ts.admin.importProvenance(dsseEnvelope(STATEMENT, signing.privateKey));

    const env = { WARD_SERVER: ts.server.adminUrl, WARD_TOKEN: ts.bootstrapToken };
    const expected = (await ts.admin.getWorkload(ORDERS)).attributes;
    const sources = new Set(Object.values(expected).map((a) => a.source));
    for (const s of ['attestor:join_token', 'scan:trivy']) assert.ok(sources.has(s), `fixture lacks ${s}: ${[...sources].join(',')}`);
    assert.ok([...sources].some((s) => s.startsWith('provenance')), `fixture lacks provenance: ${[...sources].join(',')}`);
    for (const key of ['host.name', 'image.digest', 'vuln.critical', 'vuln.maxCvss', 'vuln.cves', 'build.repo', 'build.verified']) assert.ok(key in expected, `missing ${key}`);

    const yaml = await runCli(['get', 'workload', ORDERS, '-o', 'yaml'], { env });
    assert.equal(yaml.code, 0, yaml.stderr);
    const shown = parseYaml(yaml.stdout) as { spiffeId: string; attributes: Record<string, ShownAttribute> };
    assert.equal(shown.spiffeId, ORDERS);
    assert.deepEqual(Object.keys(shown.attributes).sort(), Object.keys(expected).sort(), 'every attribute');
    for (const [key, attr] of Object.entries(shown.attributes)) {
      assert.deepEqual(attr, expected[key], key);
      assert.ok(typeof attr.source === 'string' && attr.source.length > 0, `${key} has a source`);
      assert.ok(Number.isSafeInteger(attr.observedAt) && attr.observedAt > 1_600_000_000_000, `${key} has a time`);
    }

    const json = await runCli(['get', 'workload', ORDERS, '-o', 'json'], { env });
    assert.deepEqual((JSON.parse(json.stdout) as { attributes: unknown }).attributes, expected);

    const text = await runCli(['get', 'workload', ORDERS], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /ATTRIBUTE\s+VALUE\s+SOURCE\s+OBSERVED/);
    for (const [key, attr] of Object.entries(expected)) {
      assert.match(text.stdout, new RegExp(`^${key.replace(/\./g, '\\.')}\\s+.*\\s${attr.source.replace(/[.:]/g, '\\$&')}\\s+${new Date(attr.observedAt).toISOString().slice(0, 16)}`, 'm'), key);
    }

    const missing = await runCli(['get', 'workload', `spiffe://${TRUST_DOMAIN}/nope`, '-o', 'yaml'], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stdout + missing.stderr, /ERR_SERVER_NOT_FOUND/);
  });
}
