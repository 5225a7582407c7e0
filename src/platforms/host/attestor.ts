/**
 * `host` workload attestor: the calling process on the agent's host (uid, gid, executable path
 * and SHA-256), as the agent read it from the kernel (peer.ts). The server trusts these facts
 * exactly as far as it trusts the agent, so they must come from an attested node.
 * See docs/reference/attestors.md.
 */
import { deepFreeze } from '../../core/config.js';
import { configBindTo, configObject } from '../config.js';
import { nodeAttribute, requireNode, ResultBuilder, type AttestContext, type AttestationResult, type Attestor, type EvidenceCollector } from '../attestor.js';
import { PlatformError } from '../errors.js';
import { expectInteger, expectObject, expectString } from '../evidence.js';
import type { Socket } from 'node:net';
import { resolveUnixPeer } from './peer.js';

export interface HostEvidence {
  readonly hostname: string;
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly exePath: string;
  readonly exeSha256: string;
}

export interface HostConfig {
  readonly bindTo: readonly string[];
}

export function parseHostConfig(raw: unknown, path: string): HostConfig {
  const obj = configObject(raw, path, true);
  return deepFreeze({ bindTo: configBindTo(obj, path, ['join_token', 'x509pop', 'aws_iid', 'k8s_psat']) });
}

const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

export function parseHostEvidence(raw: unknown): HostEvidence {
  const o = expectObject(raw, 'host');
  return {
    hostname: expectString(o.hostname, 'host.hostname', { max: 253, pattern: HOSTNAME_RE }),
    pid: expectInteger(o.pid, 'host.pid', 1, 4_194_304),
    uid: expectInteger(o.uid, 'host.uid', 0, 4_294_967_294),
    gid: expectInteger(o.gid, 'host.gid', 0, 4_294_967_294),
    exePath: expectString(o.exePath, 'host.exePath', { max: 4096, pattern: /^\/[^\0]*$/ }),
    exeSha256: expectString(o.exeSha256, 'host.exeSha256', { pattern: /^[a-f0-9]{64}$/ }),
  };
}

export class HostAttestor implements Attestor {
  readonly name = 'host' as const;
  readonly kind = 'workload' as const;
  readonly #config: HostConfig;

  constructor(config: HostConfig) {
    this.#config = config;
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const e = parseHostEvidence(evidence);
    const node = requireNode(ctx, this.name, this.#config.bindTo);
    const known = nodeAttribute(node, 'host.name');
    if (known !== undefined && known.toLowerCase() !== e.hostname.toLowerCase()) {
      throw new PlatformError('ERR_ATTEST_MISMATCH', 'hostname differs from the one bound to the node', { details: { hostname: e.hostname } });
    }
    return new ResultBuilder(this.name, ctx.clock.now())
      .selector('name', e.hostname)
      .selector('uid', String(e.uid))
      .selector('gid', String(e.gid))
      .selector('path', e.exePath)
      .selector('sha256', e.exeSha256)
      .attribute('host.name', e.hostname)
      .attribute('host.uid', e.uid)
      .attribute('host.gid', e.gid)
      .attribute('host.exe.path', e.exePath)
      .attribute('host.exe.sha256', e.exeSha256)
      .build(node.agentId);
  }
}

export function createHostAttestor(config: unknown, path: string): Attestor {
  return new HostAttestor(parseHostConfig(config, path));
}

/** Agent side: describes the process connected to the agent's workload socket. */
export class HostPeerCollector implements EvidenceCollector<HostEvidence> {
  readonly name = 'host' as const;
  readonly #socket: Socket;
  readonly #hostname: string;

  constructor(socket: Socket, hostname: string) {
    this.#socket = socket;
    this.#hostname = hostname;
  }

  async collect(): Promise<HostEvidence> {
    const p = await resolveUnixPeer(this.#socket);
    return { hostname: this.#hostname, pid: p.pid, uid: p.uid, gid: p.gid, exePath: p.exePath, exeSha256: p.exeSha256 };
  }
}
