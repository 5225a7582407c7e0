/**
 * `vsphere` hint attestor: the VM's name and BIOS UUID as the guest sees them, checked against
 * vCenter and enriched with the VM's vCenter tags. A guest can claim any name/UUID, so this is
 * never proof on its own: it only describes an agent whose node was proven by a join token (or
 * x509 proof of possession), and if that token was issued for a VM UUID the claim must match.
 * See docs/reference/attestors.md.
 */
import { readFileSync } from 'node:fs';
import { deepFreeze } from '../../core/config.js';
import { configBindTo, configObject, configOptionalString, configString, configUrl } from '../config.js';
import { nodeAttribute, requireNode, ResultBuilder, upstream, type AttestContext, type AttestationResult, type Attestor, type EvidenceCollector } from '../attestor.js';
import { PlatformError } from '../errors.js';
import { expectObject, expectString } from '../evidence.js';
import { VcenterClient, type VcenterOptions } from './client.js';

export interface VsphereEvidence {
  readonly vmName: string;
  readonly biosUuid: string;
}

export interface VsphereConfig {
  readonly vcenter: VcenterOptions;
  readonly bindTo: readonly string[];
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function parseVsphereConfig(raw: unknown, path: string): VsphereConfig {
  const obj = configObject(raw, path);
  const ca = configOptionalString(obj, 'caPem', path);
  return deepFreeze({
    vcenter: {
      url: configUrl(obj, 'url', path),
      username: configString(obj, 'username', path),
      password: configString(obj, 'password', path),
      ...(ca === undefined ? {} : { ca }),
    },
    bindTo: configBindTo(obj, path, ['join_token', 'x509pop']),
  });
}

export function parseVsphereEvidence(raw: unknown): VsphereEvidence {
  const o = expectObject(raw, 'vsphere');
  return {
    vmName: expectString(o.vmName, 'vsphere.vmName', { max: 80 }),
    biosUuid: expectString(o.biosUuid, 'vsphere.biosUuid', { pattern: UUID_RE }).toLowerCase(),
  };
}

export class VsphereAttestor implements Attestor {
  readonly name = 'vsphere' as const;
  readonly kind = 'workload' as const;
  readonly #config: VsphereConfig;
  readonly #client: VcenterClient;

  constructor(config: VsphereConfig) {
    this.#config = config;
    this.#client = new VcenterClient(config.vcenter);
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const hint = parseVsphereEvidence(evidence);
    const node = requireNode(ctx, this.name, this.#config.bindTo);
    const bound = nodeAttribute(node, 'vm.uuid');
    if (bound !== undefined && bound.toLowerCase() !== hint.biosUuid) {
      throw new PlatformError('ERR_ATTEST_MISMATCH', 'VM UUID differs from the one the join token was issued for');
    }
    const vms = await upstream('vCenter VM lookup', () => this.#client.findVmsByName(hint.vmName, ctx.signal));
    if (vms.length !== 1) {
      throw new PlatformError('ERR_ATTEST_MISMATCH', vms.length === 0 ? 'no VM of that name in vCenter' : 'VM name is ambiguous in vCenter', { details: { matches: vms.length } });
    }
    const vm = await upstream('vCenter VM details', () => this.#client.describeVm(vms[0]!.moid, ctx.signal));
    if (vm.biosUuid !== hint.biosUuid) throw new PlatformError('ERR_ATTEST_MISMATCH', 'VM UUID claimed by the guest differs from vCenter');

    const out = new ResultBuilder(this.name, ctx.clock.now())
      .selector('vm-name', vm.name)
      .selector('vm-uuid', vm.biosUuid)
      .selector('vm-moid', vm.moid)
      .attribute('vm.name', vm.name)
      .attribute('vm.uuid', vm.biosUuid)
      .attribute('vm.moid', vm.moid);
    const byCategory = new Map<string, string[]>();
    for (const t of vm.tags) {
      out.selector('tag', `${t.category}:${t.name}`);
      byCategory.set(t.category, [...(byCategory.get(t.category) ?? []), t.name]);
    }
    for (const [category, names] of byCategory) {
      const sorted = [...names].sort();
      out.attribute(`vm.tag.${category}`, sorted.length === 1 ? sorted[0]! : sorted);
    }
    return out.build(node.agentId);
  }
}

export function createVsphereAttestor(config: unknown, path: string): Attestor {
  return new VsphereAttestor(parseVsphereConfig(config, path));
}

/**
 * Agent side: the guest's view of its VM. BIOS UUID from SMBIOS (`/sys/class/dmi/id/product_uuid`,
 * root-readable), name from configuration (the VM name usually equals the hostname).
 */
export class DmiCollector implements EvidenceCollector<VsphereEvidence> {
  readonly name = 'vsphere' as const;
  readonly #vmName: string;
  readonly #uuidPath: string;

  constructor(vmName: string, uuidPath = '/sys/class/dmi/id/product_uuid') {
    this.#vmName = vmName;
    this.#uuidPath = uuidPath;
  }

  async collect(): Promise<VsphereEvidence> {
    const uuid = readFileSync(this.#uuidPath, 'utf8').trim().toLowerCase();
    return parseVsphereEvidence({ vmName: this.#vmName, biosUuid: uuid });
  }
}
