import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../../../src/core/clock.js';
import type { AttestedNode } from '../../../../src/platforms/attestor.js';
import { HostAttestor, HostPeerCollector, parseHostConfig, parseHostEvidence } from '../../../../src/platforms/host/attestor.js';
import { describeProcess, parseSsUnix, resolveUnixPeer } from '../../../../src/platforms/host/peer.js';
import { PlatformError } from '../../../../src/platforms/errors.js';
import { TempDir } from '../../../fakes/pki.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

const dir = new TempDir();
after(() => dir.remove());

const node: AttestedNode = {
  attestor: 'join_token',
  agentId: `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/00112233445566778899aabbccddeeff`,
  selectors: [],
  attributes: { 'host.name': { value: 'build-01', source: 'attestor:join_token', observedAt: 0 } },
};
const sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const evidence = (over: Record<string, unknown> = {}) => ({ hostname: 'build-01', pid: 4242, uid: 1000, gid: 1000, exePath: '/usr/local/bin/billing', exeSha256: sha, ...over });
const attestor = new HostAttestor(parseHostConfig({}, 'attestors.host'));

attestorContract('host', async () => ({
  attestor,
  node,
  oneTime: false,
  valid: async () => evidence(),
  mismatch: async () => evidence({ hostname: 'other-host' }),
  expectSelectors: ['host:uid:1000', 'host:path:/usr/local/bin/billing', `host:sha256:${sha}`, 'host:name:build-01'],
  expectAttributes: { 'host.name': 'build-01', 'host.uid': 1000, 'host.exe.path': '/usr/local/bin/billing', 'host.exe.sha256': sha },
  close: async () => {},
}));

/** A unix socket server and a real client process connected to it. */
async function connectedPeer(clientArgs: (sock: string) => [string, string[]]): Promise<{ server: Server; socket: Socket; child: ChildProcess; close: () => Promise<void> }> {
  const path = join(dir.path, `agent-${process.hrtime.bigint()}.sock`);
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const [cmd, args] = clientArgs(path);
  const child = spawn(cmd, args, { stdio: 'ignore' });
  const socket = await accepted;
  return {
    server,
    socket,
    child,
    close: async () => {
      socket.destroy();
      child.kill('SIGKILL');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const nodeClient = (sock: string): [string, string[]] => [process.execPath, ['-e', `require('net').connect(${JSON.stringify(sock)}); setTimeout(() => {}, 20000)`]];

test('the peer of a unix socket is the real client process: pid, uid, gid, executable and its SHA-256', async () => {
  const peer = await connectedPeer(nodeClient);
  try {
    const p = await resolveUnixPeer(peer.socket);
    assert.equal(p.pid, peer.child.pid);
    assert.equal(p.uid, process.geteuid!());
    assert.equal(p.gid, process.getegid!());
    assert.equal(p.exePath, realpathSync(process.execPath));
    assert.equal(p.exeSha256, createHash('sha256').update(readFileSync(process.execPath)).digest('hex'));
    // The agent-side collector turns it into evidence the server attests.
    const ev = await new HostPeerCollector(peer.socket, 'build-01').collect();
    const r = await attestor.attest(ev, newContext(new ManualClock(START), node));
    assert.ok(r.selectors.includes(`host:path:${realpathSync(process.execPath)}`));
  } finally {
    await peer.close();
  }
});

test('a different program on the other end is told apart by path and hash', async (t) => {
  const python = ['/usr/bin/python3', '/usr/bin/perl'].find((p) => { try { return realpathSync(p) !== ''; } catch { return false; } });
  if (python === undefined) return t.skip('neither python3 nor perl is installed');
  const client = (sock: string): [string, string[]] => python.endsWith('python3')
    ? [python, ['-c', `import socket,time; s=socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(sock)}); time.sleep(20)`]]
    : [python, ['-MIO::Socket::UNIX', '-e', `IO::Socket::UNIX->new(Peer=>${JSON.stringify(sock)}) or die; sleep 20`]];
  const peer = await connectedPeer(client);
  try {
    const p = await resolveUnixPeer(peer.socket);
    assert.equal(p.exePath, realpathSync(python));
    assert.notEqual(p.exeSha256, createHash('sha256').update(readFileSync(process.execPath)).digest('hex'));
  } finally {
    await peer.close();
  }
});

test('a peer that has exited cannot be described (fail closed)', async () => {
  const peer = await connectedPeer(nodeClient);
  const pid = peer.child.pid!;
  peer.child.kill('SIGKILL');
  await new Promise((resolve) => peer.child.once('exit', resolve));
  await assert.rejects(resolveUnixPeer(peer.socket), { code: 'ERR_PLATFORM_PEER_UNKNOWN' });
  await assert.rejects(describeProcess(pid), { code: 'ERR_PLATFORM_PEER_UNKNOWN' });
  await peer.close();
});

test('ss output: a socket shared by two processes is ambiguous', async () => {
  const rows = parseSsUnix([
    'u_str ESTAB 0      0      /run/ward/agent.sock 22252 * 22251 users:(("ward",pid=10,fd=21))',
    'u_str ESTAB 0      0                        * 22251 * 22252 users:(("app",pid=11,fd=3),("app",pid=12,fd=3))',
    'u_str ESTAB 0      0  * 1 * 2 users:(("we ird) name,pid=99,fd=1",pid=13,fd=4))',
    'garbage line',
  ].join('\n'));
  assert.deepEqual(rows[0], { localInode: 22252, peerInode: 22251, pids: [10] });
  assert.deepEqual(rows[1], { localInode: 22251, peerInode: 22252, pids: [11, 12] });
  assert.deepEqual(rows[2]!.pids, [13], 'a process name cannot inject a pid');
  assert.equal(rows.length, 3);
  const peer = await connectedPeer(nodeClient);
  try {
    const ours = rows[0]!;
    const fakeSs = async () => {
      const { socketInode } = await import('../../../../src/platforms/host/peer.js');
      const inode = await socketInode(peer.socket);
      return `u_str ESTAB 0 0 /x ${inode} * ${ours.peerInode} users:(("ward",pid=1,fd=1))\nu_str ESTAB 0 0 * ${ours.peerInode} * ${inode} users:(("a",pid=11,fd=3),("b",pid=12,fd=3))`;
    };
    await assert.rejects(resolveUnixPeer(peer.socket, { ss: fakeSs }), { code: 'ERR_PLATFORM_PEER_UNKNOWN' });
  } finally {
    await peer.close();
  }
});

test('bindTo and hostname binding', async () => {
  const k8sNode: AttestedNode = { attestor: 'k8s_psat', agentId: `spiffe://${TRUST_DOMAIN}/ward/agent/k8s_psat/prod/abc`, selectors: [], attributes: {} };
  const r = await attestor.attest(evidence({ hostname: 'anything' }), newContext(new ManualClock(START), k8sNode));
  assert.equal(r.attributes['host.name']?.value, 'anything');
  const strict = new HostAttestor(parseHostConfig({ bindTo: ['join_token'] }, 'a'));
  await rejectsWith(strict.attest(evidence(), newContext(new ManualClock(START), k8sNode)), 'ERR_ATTEST_NOT_BOUND');
});

test('fuzz: host evidence and ss output parsers never throw anything but their codes', () => {
  fc.assert(
    fc.property(fc.anything({ maxDepth: 2 }), (v) => {
      try {
        parseHostEvidence(v);
        return true;
      } catch (error) {
        return error instanceof PlatformError && error.code === 'ERR_ATTEST_MALFORMED';
      }
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (text) => {
      for (const row of parseSsUnix(text)) if (!Number.isSafeInteger(row.localInode) || row.pids.some((p) => !Number.isSafeInteger(p))) return false;
      return true;
    }),
    { numRuns: 300 },
  );
});
