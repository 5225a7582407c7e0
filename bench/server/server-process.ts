/**
 * The server side of bench/server, in its own process so its memory can be read alone:
 * initialises a data dir, seeds N registered workloads (entries + workloads, directly in the
 * store, in one transaction), starts the server and prints its URLs and token as one JSON line.
 * Stops on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { parseServerConfig } from '../../src/server/config.js';
import { initServer, startServer } from '../../src/server/server.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : def;
};
const WORKLOADS = Number(arg('workloads', '10000'));
const AGENTS = Number(arg('agents', '1000'));
const TD = 'bench.test';

const dir = mkdtempSync(join(tmpdir(), 'ward-bench-server-'));
const config = parseServerConfig({ dataDir: dir, trustDomain: TD, adminListen: '127.0.0.1:0', agentListen: '127.0.0.1:0', joinTokenTtl: '1h' });
const init = await initServer({ config });

// Workload i is served by agent i % AGENTS (the agent attested with host.name=host-<k>).
const store = await openStore(config.storeUrl);
await store.transaction(async (tx) => {
  for (let i = 0; i < WORKLOADS; i++) {
    const spiffeId = `spiffe://${TD}/bench/w${i}`;
    await tx.entries.create({ id: `w${i}`, spiffeId, parentId: `spiffe://${TD}/ward/server`, selectors: [`join_token:host-name:host-${i % AGENTS}`], ttlSeconds: 3600 });
    await tx.workloads.upsert({ spiffeId, agentId: `spiffe://${TD}/ward/agent/seed`, imageDigest: `sha256:${(i % 100).toString(16).padStart(64, '0')}` });
  }
});
await store.close();

const server = await startServer({ config });
process.stdout.write(`${JSON.stringify({ adminUrl: server.adminUrl, agentUrl: server.agentUrl, token: init.adminToken, bundle: server.bundle, serverSpiffeId: server.serverSpiffeId })}\n`);
process.once('SIGTERM', () => {
  void server.close().then(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
