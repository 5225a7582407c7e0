// `ward server init` then `ward server start` as a real process (signals, stdout), driven by the
// admin CLI commands in-process: apply (and --dry-run), get in every format, token create,
// delete, the audit log, and refusals without a token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { startServerProcess } from '../../helpers/server-process.js';

const POLICY = `apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: payments-ingress }
spec:
  subject: { spiffeIds: ["spiffe://ward.test/shop/payments"] }
  action: ALLOW
  ingress:
    - from: [{ spiffeIds: ["spiffe://ward.test/shop/orders"] }]
      to: [{ ports: [8443], methods: [POST], paths: [/v1/charges] }]
---
apiVersion: ward.dev/v1alpha1
kind: RegistrationEntry
metadata: { name: orders }
spec:
  spiffeId: spiffe://ward.test/shop/orders
  parentId: "*"
  nodeSelectors: ["join_token:host-name:vm-orders"]
`;

test('ward server init/start with the admin CLI against it', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-cli-'));
  const data = join(dir, 'data');
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const init = await runCli(['server', 'init', '--data-dir', data, '--trust-domain', 'ward.test', '-o', 'json']);
  assert.equal(init.code, 0, init.stderr);
  const { adminToken } = JSON.parse(init.stdout) as { adminToken: string };
  assert.match(adminToken, /^ward_adm_[A-Za-z0-9_-]{43}$/);
  const again = await runCli(['server', 'init', '--data-dir', data, '--trust-domain', 'ward.test']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /ERR_SERVER_DATA_DIR/);

  const server = await startServerProcess(t, ['--data-dir', data, '--trust-domain', 'ward.test']);
  const { started, child, exited } = server;
  const env = { WARD_SERVER: started.adminUrl, WARD_TOKEN: adminToken };

  const files = join(dir, 'policies');
  mkdirSync(files);
  writeFileSync(join(files, 'shop.yaml'), POLICY);
  const dry = await runCli(['apply', '-f', files, '--dry-run'], { env });
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.stdout, 'accesspolicy/payments-ingress created (dry run)\nregistrationentry/orders created (dry run)\n');
  assert.match((await runCli(['get', 'policies'], { env })).stdout, /No resources found/, 'a dry run stores nothing');
  const applied = await runCli(['apply', '-f', files], { env });
  assert.equal(applied.stdout, 'accesspolicy/payments-ingress created\nregistrationentry/orders created\n');
  assert.equal((await runCli(['apply', '-f', join(files, 'shop.yaml')], { env })).stdout, 'accesspolicy/payments-ingress unchanged\nregistrationentry/orders unchanged\n');

  const policies = await runCli(['get', 'policies'], { env });
  assert.match(policies.stdout, /^NAME\s+KIND\s+VERSION\npayments-ingress\s+AccessPolicy\s+1\n$/);
  const asJson = JSON.parse((await runCli(['get', 'entries', '-o', 'json'], { env })).stdout) as { items: { spiffeId: string; nodeSelectors: string[] }[] };
  assert.deepEqual(asJson.items.map((e) => [e.spiffeId, e.nodeSelectors]), [['spiffe://ward.test/shop/orders', ['join_token:host-name:vm-orders']]]);
  assert.match((await runCli(['get', 'entries', '-o', 'yaml'], { env })).stdout, /spiffeId: spiffe:\/\/ward\.test\/shop\/orders/);
  assert.match((await runCli(['get', 'workloads'], { env })).stdout, /No resources found/);

  const token = await runCli(['token', 'create', '--ttl', '5m', '--attribute', 'host.name=vm-orders'], { env });
  assert.equal(token.code, 0, token.stderr);
  assert.match(token.stdout, /^[A-Za-z0-9_-]{43}\n# join token, single use, expires /);
  const viewer = await runCli(['token', 'create', '--admin', '--role', 'viewer', '--name', 'dash', '-o', 'json'], { env });
  const viewerToken = (JSON.parse(viewer.stdout) as { token: string }).token;
  const denied = await runCli(['delete', 'policy', 'payments-ingress'], { env: { ...env, WARD_TOKEN: viewerToken } });
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /^ward: ERR_SERVER_FORBIDDEN: /);

  assert.equal((await runCli(['delete', 'policy', 'payments-ingress'], { env })).stdout, 'policy/payments-ingress deleted\n');
  assert.match((await runCli(['get', 'policies'], { env })).stdout, /No resources found/);
  const missing = await runCli(['delete', 'entry', 'nope', '-o', 'json'], { env });
  assert.equal(missing.code, 1);
  assert.equal((JSON.parse(missing.stdout) as { error: { code: string } }).error.code, 'ERR_SERVER_NOT_FOUND');

  // The config file gives server and token when the environment does not.
  writeFileSync(join(dir, 'cli.yaml'), `server: ${started.adminUrl}\ntoken: ${adminToken}\n`);
  const viaFile = await runCli(['get', 'entries', '--config', join(dir, 'cli.yaml'), '-o', 'wide'], { env: {} });
  assert.equal(viaFile.code, 0, viaFile.stderr);
  assert.match(viaFile.stdout, /^NAME\s+SPIFFE ID\s+PARENT\s+NODE SELECTORS\s+SELECTORS\s+TTL\s+REVISION\norders\s+spiffe:\/\/ward\.test\/shop\/orders\s+\*\s+join_token:host-name:vm-orders\s+-\s+3600s\s+1\n$/);

  const anon = await runCli(['get', 'agents'], { env: { WARD_SERVER: started.adminUrl } });
  assert.equal(anon.code, 1);
  assert.match(anon.stderr, /ERR_SERVER_UNAUTHENTICATED/);
  const noServer = await runCli(['get', 'agents'], { env: {} });
  assert.match(noServer.stderr, /ERR_API_NO_SERVER/);

  const scan = await runCli(['scan', 'import', 'test/fixtures/scans/trivy-orders.json'], { env });
  assert.equal(scan.code, 0, scan.stderr);
  assert.equal(scan.stdout, 'trivy: 1 image(s), 0 workload(s) updated\n');
  const notJson = await runCli(['scan', 'import', join(files, 'shop.yaml')], { env });
  assert.equal(notJson.code, 1);
  assert.match(notJson.stderr, /^ward: ERR_API_INPUT: /);

  const audit = await runCli(['get', 'audit', '-o', 'wide', '--limit', '100'], { env });
  for (const action of ['server.init', 'policy.apply', 'entry.create', 'join-token.create', 'admin-token.create', 'policy.delete', 'scan.import']) {
    assert.match(audit.stdout, new RegExp(`\\b${action.replace('.', '\\.')}\\b`), `audit shows ${action}`);
  }
  assert.match(audit.stdout, /policy\.delete\s+policy\/payments-ingress\s+denied ERR_SERVER_FORBIDDEN/);
  assert.ok(!audit.stdout.includes(adminToken) && !audit.stdout.includes(viewerToken), 'no token in the audit log');

  child.kill('SIGTERM');
  assert.equal(await exited, 0, `server exit; stderr: ${server.stderr()}`);
});
