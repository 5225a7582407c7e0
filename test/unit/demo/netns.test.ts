// Builds a real three-host network in namespaces, proves traffic crosses it (and only between
// its own hosts), then proves teardown leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { NetnsTopology, netnsAvailable, removeStaleTopologies } from '../../../src/cli/commands/demo/netns.js';

const available = await netnsAvailable();

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

test('hosts in separate namespaces reach each other over the bridge, and destroy removes everything', { skip: !available && 'needs root and ip netns' }, async () => {
  const topo = await NetnsTopology.create({ hosts: ['alpha', 'beta', 'gamma'] });
  try {
    const alpha = topo.host('alpha');
    const beta = topo.host('beta');
    assert.notEqual(alpha.address, beta.address);
    assert.ok(namespaces().includes(alpha.netns));
    // A TCP server in beta, a client in alpha: the bytes cross veth -> bridge -> veth.
    const server = topo.spawn('beta', process.execPath, ['-e', `
      const s = require('node:net').createServer((c) => { c.end('pong from ' + c.localAddress); s.close(); });
      s.listen(7070, '${beta.address}', () => console.log('ready'));
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(server.stdout!, 'data');
    const out = execFileSync('ip', ['netns', 'exec', alpha.netns, process.execPath, '-e', `
      const c = require('node:net').connect(7070, '${beta.address}');
      let b = ''; c.on('data', (d) => b += d); c.on('end', () => console.log(b + ' to ' + c.localAddress));
    `], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(out.trim(), `pong from ${beta.address} to ${alpha.address}`);
    await once(server, 'exit');
    // Namespaces are isolated: a port bound on beta's loopback is not reachable from alpha.
    const lo = execFileSync('ip', ['netns', 'exec', alpha.netns, 'ip', '-o', 'addr', 'show'], { encoding: 'utf8' });
    assert.match(lo, new RegExp(alpha.address.replace(/\./g, '\\.')));
    assert.doesNotMatch(lo, new RegExp(`${beta.address.replace(/\./g, '\\.')}/`));
  } finally {
    await topo.destroy();
  }
  assert.ok(!namespaces().some((n) => n.startsWith(`ward-${process.pid}-`)), 'namespaces left behind');
  const bridges = execFileSync('ip', ['-o', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' });
  assert.ok(!bridges.includes(topo.bridge), 'bridge left behind');
});

test('stale topologies of dead processes are removed, live ones are kept', { skip: !available && 'needs root and ip netns' }, async () => {
  const deadPid = 4_000_000 + (process.pid % 1000); // above pid_max: never alive
  const stale = `ward-${deadPid}-orphan`;
  execFileSync('ip', ['netns', 'add', stale]);
  const live = await NetnsTopology.create({ hosts: ['keep'] });
  try {
    const removed = await removeStaleTopologies();
    assert.ok(removed.includes(stale));
    assert.ok(!namespaces().includes(stale));
    assert.ok(namespaces().includes(live.host('keep').netns));
  } finally {
    await live.destroy();
  }
});

test('bad host names are refused before anything is built', { skip: !available && 'needs root and ip netns' }, async () => {
  await assert.rejects(NetnsTopology.create({ hosts: ['Bad Name'] }), (e: unknown) => (e as { code?: string }).code === 'ERR_NETNS_COMMAND_FAILED');
  assert.ok(!namespaces().some((n) => n.startsWith(`ward-${process.pid}-`)));
});
