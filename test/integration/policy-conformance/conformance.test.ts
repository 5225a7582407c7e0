// The Kubernetes network-policy e2e truth tables and Istio's authorization cases, written as
// PolicyTest files whose policies are upstream NetworkPolicy/AuthorizationPolicy documents, run
// through `ward policy test` (and so through the import path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runCli } from '../../helpers/cli.js';

const DIR = 'test/integration/policy-conformance';

for (const suite of ['kubernetes', 'istio']) {
  test(`${suite} conformance suite passes through the import path`, async () => {
    const files = readdirSync(join(DIR, suite)).filter((f) => f.endsWith('.yaml') && f !== 'workloads.yaml');
    assert.ok(files.length >= (suite === 'kubernetes' ? 16 : 5));
    const run = await runCli(['policy', 'test', join(DIR, suite), '-o', 'json']);
    const report = JSON.parse(run.stdout) as { passed: number; failed: number; results: Array<{ passed: boolean; test: string; case: string; decision: { policy?: string } }> };
    assert.equal(run.code, 0, run.stdout.slice(0, 2000));
    assert.equal(report.failed, 0);
    assert.ok(report.passed >= (suite === 'kubernetes' ? 1500 : 60), `only ${report.passed} cases`);
    // Every policy that decided came from the upstream format, not a hand-written Ward policy.
    assert.ok(report.results.some((r) => r.decision.policy !== undefined));
  });
}

test('a wrong expectation in a conformance table fails, with the explanation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-conf-'));
  try {
    writeFileSync(join(dir, 'workloads.yaml'), readFileSync(join(DIR, 'kubernetes', 'workloads.yaml')));
    const original = readFileSync(join(DIR, 'kubernetes', '03-podselector-same-namespace.yaml'), 'utf8');
    const broken = original.replace('x/c: "X.- ... ..."', 'x/c: "..- ... ..."');
    assert.notEqual(broken, original);
    writeFileSync(join(dir, 't.yaml'), broken);
    const run = await runCli(['policy', 'test', dir]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /FAIL podselector-same-namespace: .*x\/c -> x\/a:80\/TCP/);
    assert.match(run.stdout, /expected allow, got deny/);
    assert.match(run.stdout, /x\/x-a-allows-x-b \[from networking\.k8s\.io\/v1\/NetworkPolicy\]/);
    assert.match(run.stdout, /71 passed, 1 failed\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
