import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../../../src/core/clock.js';
import type { AttestedNode } from '../../../../src/platforms/attestor.js';
import { EcsAttestor, parseEcsConfig } from '../../../../src/platforms/ecs/attestor.js';
import { EcsTaskMetadataCollector, parseTaskMetadata } from '../../../../src/platforms/ecs/task-metadata.js';
import { PlatformError } from '../../../../src/platforms/errors.js';
import { exampleTask, FakeEcsMetadata } from '../../../fakes/ecs-metadata/server.js';
import { attestorContract, newContext, rejectsWith, START, TRUST_DOMAIN } from './contract.js';

const attr = (value: string) => ({ value, source: 'attestor:aws_iid', observedAt: 0 });
const ec2Node: AttestedNode = {
  attestor: 'aws_iid',
  agentId: `spiffe://${TRUST_DOMAIN}/ward/agent/aws_iid/111122223333/us-west-2/i-0abcdef1234567890`,
  selectors: ['aws_iid:account:111122223333'],
  attributes: { 'aws.account': attr('111122223333'), 'aws.region': attr('us-west-2') },
};
const attestor = new EcsAttestor(parseEcsConfig({}, 'attestors.ecs'));

attestorContract('ecs', async () => ({
  attestor,
  node: ec2Node,
  oneTime: false,
  valid: async () => ({ task: exampleTask() }),
  mismatch: async () => {
    const task = exampleTask();
    // A task ARN from another account than the attested instance.
    task.TaskARN = String(task.TaskARN).replace('111122223333', '999988887777');
    return { task };
  },
  expectSelectors: ['ecs:cluster:default', 'ecs:family:curltest', 'ecs:revision:26', 'ecs:container-name:curl', 'ecs:image-id:sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553', 'ecs:service:MyService'],
  expectAttributes: { 'ecs.cluster': 'default', 'ecs.family': 'curltest', 'aws.account': '111122223333', 'aws.region': 'us-west-2', 'image.digest': 'sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553', 'ecs.container': 'curl' },
  close: async () => {},
}));

test('the pause container (Type CNI_PAUSE) contributes nothing', async () => {
  const r = await attestor.attest({ task: exampleTask() }, newContext(new ManualClock(START), ec2Node));
  assert.ok(!r.selectors.some((s) => s.includes('pause')), r.selectors.join('\n'));
  // Naming the pause container explicitly is refused too.
  await rejectsWith(attestor.attest({ task: exampleTask(), container: '~internal~ecs~pause' }, newContext(new ManualClock(START), ec2Node)), 'ERR_ATTEST_MISMATCH');
});

test('a cluster ARN is reduced to its name; a task ARN naming another cluster is malformed', async () => {
  const task = exampleTask();
  task.Cluster = 'arn:aws:ecs:us-west-2:111122223333:cluster/default';
  const r = await attestor.attest({ task }, newContext(new ManualClock(START), ec2Node));
  assert.equal(r.attributes['ecs.cluster']?.value, 'default');
  task.Cluster = 'other';
  await rejectsWith(attestor.attest({ task }, newContext(new ManualClock(START), ec2Node)), 'ERR_ATTEST_MALFORMED');
});

test('bound to a join-token node (no AWS facts to cross-check) it attests; bindTo narrows that', async () => {
  const jt: AttestedNode = { attestor: 'join_token', agentId: `spiffe://${TRUST_DOMAIN}/ward/agent/join_token/abc`, selectors: [], attributes: {} };
  const r = await attestor.attest({ task: exampleTask() }, newContext(new ManualClock(START), jt));
  assert.equal(r.agentId, jt.agentId);
  const strict = new EcsAttestor(parseEcsConfig({ bindTo: ['aws_iid'] }, 'a'));
  await rejectsWith(strict.attest({ task: exampleTask() }, newContext(new ManualClock(START), jt)), 'ERR_ATTEST_NOT_BOUND');
  assert.throws(() => parseEcsConfig({ bindTo: [] }, 'a'), { code: 'ERR_CONFIG_INVALID' });
});

test('the agent-side collector reads /task from the v4 endpoint and the server attests it', async () => {
  const fake = await FakeEcsMetadata.start();
  try {
    const ev = await new EcsTaskMetadataCollector(fake.uri, 'curl').collect();
    const r = await attestor.attest(ev, newContext(new ManualClock(START), ec2Node));
    assert.equal(r.attributes['ecs.task_arn']?.value, 'arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c');
    fake.rawTaskBody = '{"Cluster": ';
    await assert.rejects(new EcsTaskMetadataCollector(fake.uri).collect(), { code: 'ERR_PLATFORM_RESPONSE_INVALID' });
  } finally {
    await fake.close();
  }
});

test('fuzz: the task metadata parser accepts or fails with ERR_ATTEST_MALFORMED, also on mutated real payloads', () => {
  const base = exampleTask();
  const keys = Object.keys(base);
  fc.assert(
    fc.property(fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.tuple(fc.constantFrom(...keys), fc.anything({ maxDepth: 2 })).map(([k, v]) => ({ ...base, [k]: v })),
      fc.tuple(fc.nat(1), fc.constantFrom('Name', 'Image', 'ImageID', 'Labels', 'Type', 'DockerId'), fc.anything({ maxDepth: 2 })).map(([i, k, v]) => {
        const t = exampleTask();
        (t.Containers as Record<string, unknown>[])[i]![k] = v;
        return t;
      }),
    ), (value) => {
      try {
        const t = parseTaskMetadata(value);
        return typeof t.family === 'string' && /^\d{12}$/.test(t.account);
      } catch (error) {
        return error instanceof PlatformError && error.code === 'ERR_ATTEST_MALFORMED';
      }
    }),
    { numRuns: 400 },
  );
});
