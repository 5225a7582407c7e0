/**
 * The EC2 instance identity document, as served at
 * `/latest/dynamic/instance-identity/document`. Only the fields Ward uses are validated
 * strictly; AWS adds fields over time and they are ignored.
 */
import { expectObject, expectString, optionalString } from '../evidence.js';
import { malformed } from '../attestor.js';

export interface InstanceIdentityDocument {
  readonly accountId: string;
  readonly region: string;
  readonly availabilityZone: string;
  readonly instanceId: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly architecture: string | undefined;
  readonly privateIp: string | undefined;
  /** ms since epoch the instance was launched (or last started). */
  readonly pendingTime: number;
}

export const MAX_DOCUMENT_BYTES = 8192;

/** Parses the raw document text (bytes that were signed). Throws ERR_ATTEST_MALFORMED. */
export function parseInstanceIdentityDocument(text: string): InstanceIdentityDocument {
  if (Buffer.byteLength(text, 'utf8') > MAX_DOCUMENT_BYTES) throw malformed('aws_iid.document', `larger than ${MAX_DOCUMENT_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw malformed('aws_iid.document', 'is not JSON');
  }
  const doc = expectObject(json, 'aws_iid.document');
  const p = (k: string): string => `aws_iid.document.${k}`;
  const pendingText = expectString(doc.pendingTime, p('pendingTime'), { max: 40, pattern: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/ });
  const pendingTime = Date.parse(pendingText);
  if (!Number.isFinite(pendingTime)) throw malformed(p('pendingTime'), 'is not a date');
  return Object.freeze({
    accountId: expectString(doc.accountId, p('accountId'), { pattern: /^\d{12}$/ }),
    region: expectString(doc.region, p('region'), { max: 32, pattern: /^[a-z]{2}(-[a-z]+)+-\d+$/ }),
    availabilityZone: expectString(doc.availabilityZone, p('availabilityZone'), { max: 40, pattern: /^[a-z]{2}(-[a-z]+)+-\d+[a-z]?(-[a-z0-9]+)*$/ }),
    instanceId: expectString(doc.instanceId, p('instanceId'), { pattern: /^i-[0-9a-f]{8,17}$/ }),
    imageId: expectString(doc.imageId, p('imageId'), { pattern: /^ami-[0-9a-f]{8,17}$/ }),
    instanceType: expectString(doc.instanceType, p('instanceType'), { max: 40, pattern: /^[a-z0-9-]+\.[a-z0-9-]+$/ }),
    architecture: optionalString(doc.architecture, p('architecture'), { max: 20, pattern: /^[a-z0-9_]+$/ }),
    privateIp: optionalString(doc.privateIp, p('privateIp'), { max: 45, pattern: /^[0-9a-fA-F.:]+$/ }),
    pendingTime,
  });
}
