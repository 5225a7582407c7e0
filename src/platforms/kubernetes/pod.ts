/** The facts Ward reads from a Pod's JSON (metadata, spec, status). */
import { isPlainObject } from '../evidence.js';
import { invalidResponse } from '../http.js';
import type { PodJson } from './client.js';

export interface PodContainerFacts {
  readonly name: string;
  readonly image: string;
  /** `sha256:<hex>` from status.containerStatuses[].imageID, when the runtime reported it. */
  readonly imageDigest: string | undefined;
}

export interface PodFacts {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  readonly nodeName: string | undefined;
  readonly phase: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly owner: { readonly kind: string; readonly name: string; readonly uid: string } | undefined;
  readonly containers: readonly PodContainerFacts[];
}

/** `docker-pullable://repo@sha256:..`, `repo@sha256:..`, `sha256:..` -> `sha256:..`. */
export function digestFromImageId(imageId: string): string | undefined {
  const m = /(?:^|@)(sha256:[a-f0-9]{64})$/.exec(imageId);
  return m?.[1];
}

export function podFacts(pod: PodJson): PodFacts {
  const what = 'Pod';
  const meta = pod.metadata;
  const spec = pod.spec;
  if (!isPlainObject(meta) || !isPlainObject(spec)) throw invalidResponse(what, 'metadata/spec');
  const s = (v: unknown, path: string): string => {
    if (typeof v !== 'string' || v.length === 0) throw invalidResponse(what, path);
    return v;
  };
  const labels: Record<string, string> = {};
  if (isPlainObject(meta.labels)) for (const [k, v] of Object.entries(meta.labels)) if (typeof v === 'string') labels[k] = v;
  let owner: PodFacts['owner'];
  if (Array.isArray(meta.ownerReferences)) {
    const ref = meta.ownerReferences.find((r) => isPlainObject(r) && r.controller === true) ?? meta.ownerReferences[0];
    if (isPlainObject(ref) && typeof ref.kind === 'string' && typeof ref.name === 'string' && typeof ref.uid === 'string') owner = { kind: ref.kind, name: ref.name, uid: ref.uid };
  }
  const status = isPlainObject(pod.status) ? pod.status : {};
  const statuses = new Map<string, Readonly<Record<string, unknown>>>();
  if (Array.isArray(status.containerStatuses)) for (const cs of status.containerStatuses) if (isPlainObject(cs) && typeof cs.name === 'string') statuses.set(cs.name, cs);
  const containers = (Array.isArray(spec.containers) ? spec.containers : []).filter(isPlainObject).map((c, i) => {
    const name = s(c.name, `spec.containers[${i}].name`);
    const cs = statuses.get(name);
    const imageId = cs && typeof cs.imageID === 'string' ? cs.imageID : '';
    return { name, image: s(c.image, `spec.containers[${i}].image`), imageDigest: digestFromImageId(imageId) };
  });
  return {
    namespace: s(meta.namespace, 'metadata.namespace'),
    name: s(meta.name, 'metadata.name'),
    uid: s(meta.uid, 'metadata.uid'),
    serviceAccount: typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : 'default',
    nodeName: typeof spec.nodeName === 'string' ? spec.nodeName : undefined,
    phase: typeof status.phase === 'string' ? status.phase : undefined,
    labels,
    owner,
    containers,
  };
}
