/**
 * `ecs` workload attestor: ECS task metadata v4, bound to the agent's node. The metadata is not
 * signed, so it only describes workloads on a node already proven by `aws_iid` (whose account
 * and region must match the task ARN) or `join_token`. See docs/reference/attestors.md.
 */
import { configObject, configBindTo } from '../config.js';
import { nodeAttribute, requireNode, ResultBuilder, type AttestContext, type AttestationResult, type Attestor } from '../attestor.js';
import { PlatformError } from '../errors.js';
import { expectObject, optionalString } from '../evidence.js';
import { deepFreeze } from '../../core/config.js';
import { parseTaskMetadata } from './task-metadata.js';

export interface EcsConfig {
  readonly bindTo: readonly string[];
}

export function parseEcsConfig(raw: unknown, path: string): EcsConfig {
  const obj = configObject(raw, path, true);
  return deepFreeze({ bindTo: configBindTo(obj, path, ['aws_iid', 'join_token']) });
}

export class EcsAttestor implements Attestor {
  readonly name = 'ecs' as const;
  readonly kind = 'workload' as const;
  readonly #config: EcsConfig;

  constructor(config: EcsConfig) {
    this.#config = config;
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const obj = expectObject(evidence, 'ecs');
    const task = parseTaskMetadata(obj.task);
    const wanted = optionalString(obj.container, 'ecs.container', { max: 255 });
    const node = requireNode(ctx, this.name, this.#config.bindTo);
    if (node.attestor === 'aws_iid') {
      if (nodeAttribute(node, 'aws.account') !== task.account || nodeAttribute(node, 'aws.region') !== task.region) {
        throw new PlatformError('ERR_ATTEST_MISMATCH', 'task ARN account/region differ from the attested EC2 instance', { details: { taskAccount: task.account, taskRegion: task.region } });
      }
    }
    // Only containers from the task definition describe the workload; ECS's own (pause) do not.
    const normal = task.containers.filter((c) => c.type === 'NORMAL');
    const selected = wanted === undefined ? normal : normal.filter((c) => c.name === wanted);
    if (selected.length === 0) {
      throw new PlatformError('ERR_ATTEST_MISMATCH', wanted === undefined ? 'task has no NORMAL containers' : 'named container is not a NORMAL container of the task', { details: { container: wanted } });
    }
    const out = new ResultBuilder(this.name, ctx.clock.now())
      .selector('cluster', task.clusterName)
      .selector('family', task.family)
      .selector('revision', task.revision)
      .selector('task-family-revision', `${task.family}:${task.revision}`)
      .attribute('ecs.cluster', task.clusterName)
      .attribute('ecs.family', task.family)
      .attribute('ecs.revision', task.revision)
      .attribute('ecs.task_arn', task.taskArn)
      .attribute('aws.account', task.account)
      .attribute('aws.region', task.region);
    if (task.serviceName !== undefined) out.selector('service', task.serviceName).attribute('ecs.service', task.serviceName);
    for (const c of selected) {
      out.selector('container-name', c.name).selector('image', c.image);
      if (c.imageId !== '') out.selector('image-id', c.imageId);
      for (const [k, v] of Object.entries(c.labels)) out.selector('label', `${k}:${v}`);
    }
    if (selected.length === 1) {
      const c = selected[0]!;
      out.attribute('ecs.container', c.name).attribute('image.name', c.image);
      if (c.imageId !== '') out.attribute('image.digest', c.imageId);
      for (const [k, v] of Object.entries(c.labels)) out.attribute(`ecs.label.${k}`, v);
    } else {
      const digests = [...new Set(selected.map((c) => c.imageId).filter((d) => d !== ''))];
      if (digests.length === 1) out.attribute('image.digest', digests[0]!);
    }
    return out.build(node.agentId);
  }
}

export function createEcsAttestor(config: unknown, path: string): Attestor {
  return new EcsAttestor(parseEcsConfig(config, path));
}
