/**
 * A small network of "hosts" on one machine: one Linux network namespace per host, each with
 * its own address on a bridge in the root namespace, so traffic between services really
 * crosses a network (and can be captured on the bridge).
 *
 * Addresses come from 198.18.0.0/15 (RFC 2544, reserved for benchmarking networks), so they
 * can never collide with a real private network. Names carry the creating process id, so a
 * later run can remove what a crashed run left behind without touching a live run's hosts.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { DemoError } from './errors.js';

const run = promisify(execFile);

export interface NetnsHost {
  /** Logical name (`orders`). */
  readonly name: string;
  /** Namespace name (`ward-1234-orders`). */
  readonly netns: string;
  /** IPv4 address on the bridge. */
  readonly address: string;
}

export interface TopologyOptions {
  hosts: readonly string[];
  /** First three octets of the /24; default a random /24 inside 198.18.0.0/15. */
  subnet?: string;
}

const NAME_PREFIX = 'ward-';

async function ip(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', [...args], { timeout: 10_000 });
    return stdout;
  } catch (error) {
    throw new DemoError('ERR_NETNS_COMMAND_FAILED', `ip ${args.join(' ')} failed: ${(error as Error).message.split('\n')[0]}`, {
      cause: error,
      details: { command: `ip ${args.join(' ')}` },
    });
  }
}

/** True when this process may create network namespaces (root and a working `ip netns`). */
export async function netnsAvailable(): Promise<boolean> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  try {
    await run('ip', ['netns', 'list'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces and bridges left by Ward runs whose process is gone. Returns what it removed. */
export async function removeStaleTopologies(): Promise<string[]> {
  const removed: string[] = [];
  const list = await ip(['netns', 'list']);
  for (const line of list.split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    const m = /^ward-(\d+)-/.exec(ns);
    if (m && !pidAlive(Number(m[1]))) {
      await ip(['netns', 'delete', ns]).catch(() => undefined);
      removed.push(ns);
    }
  }
  const links = await ip(['-o', 'link', 'show', 'type', 'bridge']);
  for (const line of links.split('\n')) {
    const m = /^\d+:\s+(wb(\d+)x[0-9a-f]+)[:@]/.exec(line);
    if (m && !pidAlive(Number(m[2]))) {
      await ip(['link', 'delete', m[1] as string]).catch(() => undefined);
      removed.push(m[1] as string);
    }
  }
  return removed;
}

/**
 * A bridge plus one namespace per host. The root namespace is reachable from every host at
 * {@link NetnsTopology.gatewayAddress} (where the control plane listens).
 */
export class NetnsTopology {
  readonly hosts: ReadonlyMap<string, NetnsHost>;
  readonly bridge: string;
  readonly gatewayAddress: string;
  #destroyed = false;

  private constructor(bridge: string, gatewayAddress: string, hosts: Map<string, NetnsHost>) {
    this.bridge = bridge;
    this.gatewayAddress = gatewayAddress;
    this.hosts = hosts;
  }

  /** Builds the network; on any failure removes whatever it had built and rethrows. */
  static async create(options: TopologyOptions): Promise<NetnsTopology> {
    if (!(await netnsAvailable())) {
      throw new DemoError('ERR_NETNS_UNAVAILABLE', 'network namespaces need root and `ip netns`');
    }
    if (options.hosts.length === 0 || options.hosts.length > 200) {
      throw new DemoError('ERR_NETNS_COMMAND_FAILED', 'a topology has 1 to 200 hosts');
    }
    for (const name of options.hosts) {
      if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) throw new DemoError('ERR_NETNS_COMMAND_FAILED', `bad host name ${JSON.stringify(name)}`);
    }
    const tag = randomBytes(2).toString('hex');
    const pid = process.pid;
    // Interface names are limited to 15 bytes.
    const bridge = `wb${pid}x${tag}`.slice(0, 15);
    const subnet = options.subnet ?? `198.${18 + (randomBytes(1)[0]! & 1)}.${randomBytes(1)[0]!}`;
    const gatewayAddress = `${subnet}.1`;
    const hosts = new Map<string, NetnsHost>();
    const topology = new NetnsTopology(bridge, gatewayAddress, hosts);
    try {
      await ip(['link', 'add', bridge, 'type', 'bridge']);
      await ip(['addr', 'add', `${gatewayAddress}/24`, 'dev', bridge]);
      await ip(['link', 'set', bridge, 'up']);
      let index = 0;
      for (const name of options.hosts) {
        index += 1;
        const netns = `${NAME_PREFIX}${pid}-${name}`;
        const hostSide = `wv${pid}${tag}${index}`.slice(0, 15);
        const peerSide = `wp${pid}${tag}${index}`.slice(0, 15);
        const address = `${subnet}.${index + 1}`;
        await ip(['netns', 'add', netns]);
        hosts.set(name, { name, netns, address });
        await ip(['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', peerSide]);
        await ip(['link', 'set', hostSide, 'master', bridge]);
        await ip(['link', 'set', hostSide, 'up']);
        await ip(['link', 'set', peerSide, 'netns', netns]);
        await ip(['-n', netns, 'link', 'set', peerSide, 'name', 'eth0']);
        await ip(['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
        await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
        await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
        await ip(['-n', netns, 'route', 'add', 'default', 'via', gatewayAddress]);
      }
      return topology;
    } catch (error) {
      await topology.destroy();
      throw error;
    }
  }

  host(name: string): NetnsHost {
    const h = this.hosts.get(name);
    if (!h) throw new DemoError('ERR_NETNS_COMMAND_FAILED', `no host ${name} in this topology`);
    return h;
  }

  /** Starts `command` inside the host's namespace. */
  spawn(hostName: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.host(hostName).netns, command, ...args], options);
  }

  /** Removes every namespace (and with it each veth) and the bridge. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const host of this.hosts.values()) {
      await ip(['netns', 'delete', host.netns]).catch(() => undefined);
    }
    await ip(['link', 'delete', this.bridge]).catch(() => undefined);
  }
}
