/**
 * ECS task metadata endpoint v4 (`${ECS_CONTAINER_METADATA_URI_V4}/task`): the parser of its
 * JSON and the agent-side client. The metadata is not signed: it is evidence only when the agent
 * sending it sits on a node attested another way (see attestor.ts).
 */
import type { EvidenceCollector } from '../attestor.js';
import { malformed } from '../attestor.js';
import { expectArray, expectObject, expectString, expectStringMap, optionalString } from '../evidence.js';
import { expectStatus, jsonBody, platformRequest } from '../http.js';

export interface EcsContainer {
  readonly name: string;
  readonly dockerId: string | undefined;
  readonly image: string;
  /** The image's SHA-256 digest as ECS reports it; may be empty while pulling. */
  readonly imageId: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `NORMAL` for task-definition containers; `CNI_PAUSE`, `EMPTY_HOST_VOLUME`... for ECS's own. */
  readonly type: string;
  readonly knownStatus: string | undefined;
}

export interface EcsTask {
  readonly cluster: string;
  readonly clusterName: string;
  readonly taskArn: string;
  readonly account: string;
  readonly region: string;
  readonly family: string;
  readonly revision: string;
  readonly serviceName: string | undefined;
  readonly launchType: string | undefined;
  readonly availabilityZone: string | undefined;
  readonly containers: readonly EcsContainer[];
}

const ARN_RE = /^arn:aws(-[a-z]+)*:ecs:([a-z]{2}(-[a-z]+)+-\d+):(\d{12}):task\/(?:([A-Za-z0-9_-]{1,255})\/)?([a-f0-9]{32}|[A-Za-z0-9-]{1,64})$/;
const CLUSTER_ARN_RE = /^arn:aws(-[a-z]+)*:ecs:[a-z0-9-]+:\d{12}:cluster\/([A-Za-z0-9_-]{1,255})$/;

export const MAX_CONTAINERS = 64;

/** Parses the v4 `/task` JSON (untrusted). Throws ERR_ATTEST_MALFORMED naming the field. */
export function parseTaskMetadata(raw: unknown, path = 'ecs.task'): EcsTask {
  const t = expectObject(raw, path);
  const cluster = expectString(t.Cluster, `${path}.Cluster`, { max: 512 });
  const clusterName = CLUSTER_ARN_RE.exec(cluster)?.[2] ?? cluster;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(clusterName)) throw malformed(`${path}.Cluster`, 'is not a cluster name or ARN');
  const taskArn = expectString(t.TaskARN, `${path}.TaskARN`, { max: 512 });
  const m = ARN_RE.exec(taskArn);
  if (m === null) throw malformed(`${path}.TaskARN`, 'is not an ECS task ARN');
  if (m[5] !== undefined && m[5] !== clusterName) throw malformed(`${path}.TaskARN`, 'names a different cluster than Cluster');
  const containers = expectArray(t.Containers, `${path}.Containers`, MAX_CONTAINERS).map((c, i): EcsContainer => {
    const cp = `${path}.Containers[${i}]`;
    const o = expectObject(c, cp);
    return Object.freeze({
      name: expectString(o.Name, `${cp}.Name`, { max: 255 }),
      dockerId: optionalString(o.DockerId, `${cp}.DockerId`, { max: 128, pattern: /^[a-f0-9]{12,64}$/ }),
      image: expectString(o.Image, `${cp}.Image`, { max: 1024 }),
      imageId: expectString(o.ImageID ?? '', `${cp}.ImageID`, { max: 128, empty: true, pattern: /^(sha256:[a-f0-9]{64})?$/ }),
      labels: o.Labels === undefined ? Object.freeze({}) : expectStringMap(o.Labels, `${cp}.Labels`, 128),
      type: expectString(o.Type ?? 'NORMAL', `${cp}.Type`, { max: 64, pattern: /^[A-Z_]+$/ }),
      knownStatus: optionalString(o.KnownStatus, `${cp}.KnownStatus`, { max: 64 }),
    });
  });
  return Object.freeze({
    cluster,
    clusterName,
    taskArn,
    account: m[4]!,
    region: m[2]!,
    family: expectString(t.Family, `${path}.Family`, { max: 255, pattern: /^[A-Za-z0-9_-]+$/ }),
    revision: expectString(t.Revision, `${path}.Revision`, { max: 10, pattern: /^[1-9]\d*$/ }),
    serviceName: optionalString(t.ServiceName, `${path}.ServiceName`, { max: 255 }),
    launchType: optionalString(t.LaunchType, `${path}.LaunchType`, { max: 32 }),
    availabilityZone: optionalString(t.AvailabilityZone, `${path}.AvailabilityZone`, { max: 40 }),
    containers: Object.freeze(containers),
  });
}

/** Evidence an agent sends: the `/task` JSON as fetched and, optionally, which container it serves. */
export interface EcsEvidence {
  readonly task: unknown;
  readonly container?: string;
}

export class EcsTaskMetadataCollector implements EvidenceCollector<EcsEvidence> {
  readonly name = 'ecs' as const;
  readonly #base: string;
  readonly #container: string | undefined;

  /** `metadataUri` is the value of ECS_CONTAINER_METADATA_URI_V4 (read at the agent's edge). */
  constructor(metadataUri: string, container?: string) {
    this.#base = metadataUri.replace(/\/+$/, '');
    this.#container = container;
  }

  async collect(signal?: AbortSignal): Promise<EcsEvidence> {
    const res = expectStatus(await platformRequest({ url: `${this.#base}/task`, timeoutMs: 2000, maxBodyBytes: 512 * 1024, ...(signal ? { signal } : {}) }), 'ECS task metadata');
    const task = jsonBody(res, 'ECS task metadata');
    return this.#container === undefined ? { task } : { task, container: this.#container };
  }
}
