/**
 * The Ward event model: OCSF-aligned classes, each stamped with the workload identity it is
 * about and, where a policy was evaluated, the decision. Field names follow OCSF 1.3
 * (snake_case, `class_uid`, `activity_id`, `type_uid = class_uid * 100 + activity_id`,
 * `time` in epoch milliseconds); Ward's own additions are the `workload` and `decision`
 * objects (documented in docs/reference/events.md, exported to OCSF sinks under `unmapped`).
 *
 * The schemas below are the single source of truth: the TypeScript types are inferred from
 * them, and the codec validates untrusted input with them.
 */
import {
  arr, bool, int, literal, num, obj, optional, str, invalid,
  type Infer, type Parser,
} from './schema.js';

/** OCSF schema version Ward's events follow. */
export const OCSF_VERSION = '1.3.0';

/** OCSF class ids Ward emits, with their categories. */
export const EVENT_CLASSES = Object.freeze({
  networkActivity: { classUid: 4001, categoryUid: 4, name: 'Network Activity' },
  httpActivity: { classUid: 4002, categoryUid: 4, name: 'HTTP Activity' },
  processActivity: { classUid: 1007, categoryUid: 1, name: 'Process Activity' },
  detectionFinding: { classUid: 2004, categoryUid: 2, name: 'Detection Finding' },
  vulnerabilityFinding: { classUid: 2002, categoryUid: 2, name: 'Vulnerability Finding' },
  authorization: { classUid: 3003, categoryUid: 3, name: 'Authorize Session' },
} as const);

/** OCSF `activity_id` values per class (only the ones Ward emits, plus 0 Unknown and 99 Other). */
export const ACTIVITY = Object.freeze({
  network: { unknown: 0, open: 1, close: 2, reset: 3, fail: 4, refuse: 5, traffic: 6, other: 99 },
  http: { unknown: 0, connect: 1, delete: 2, get: 3, head: 4, options: 5, post: 6, put: 7, trace: 8, patch: 9, other: 99 },
  process: { unknown: 0, launch: 1, terminate: 2, open: 3, inject: 4, setUserId: 5, other: 99 },
  finding: { unknown: 0, create: 1, update: 2, close: 3, other: 99 },
  authorization: { unknown: 0, assignPrivileges: 1, assignGroups: 2, other: 99 },
} as const);

/** OCSF `severity_id`. */
export const SEVERITY = Object.freeze({ unknown: 0, informational: 1, low: 2, medium: 3, high: 4, critical: 5, fatal: 6, other: 99 } as const);
/** OCSF `status_id`. */
export const STATUS = Object.freeze({ unknown: 0, success: 1, failure: 2, other: 99 } as const);
/** OCSF `action_id` (what the enforcing control did). */
export const ACTION = Object.freeze({ unknown: 0, allowed: 1, denied: 2, observed: 3, modified: 4, other: 99 } as const);

/** Limits that keep one event bounded whatever the sender claims. */
export const EVENT_LIMITS = Object.freeze({
  maxStringLength: 4096,
  maxCommandLineLength: 8192,
  maxSpiffeIdLength: 2048,
  maxListLength: 256,
});

// SPIFFE ID as the SPIFFE spec defines it: lowercase trust domain of [a-z0-9._-], path
// segments of [A-Za-z0-9._-], no empty, `.` or `..` segments, no query, fragment, port or user.
const SEGMENT = '(?!\\.\\.?(?:/|$))[A-Za-z0-9._-]+';
const SPIFFE_RE = new RegExp(`^spiffe://[a-z0-9._-]+(?:/${SEGMENT})*$`);

/** True when `id` is a syntactically valid SPIFFE ID. */
export function isSpiffeId(id: string): boolean {
  return id.length <= EVENT_LIMITS.maxSpiffeIdLength && SPIFFE_RE.test(id);
}

const spiffeId: Parser<string> = (v, path) => {
  const s = str({ max: EVENT_LIMITS.maxSpiffeIdLength })(v, path);
  if (!isSpiffeId(s)) throw invalid(path, 'is not a valid SPIFFE ID');
  return s;
};

const text = str({ max: EVENT_LIMITS.maxStringLength });
const name = str({ min: 1, max: 253 });
const port = int({ min: 0, max: 65535 });
const count = int({ min: 0 });
const ipLiteral = str({ max: 45, pattern: /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]{2,45})$/ });
const sevId = literal(0, 1, 2, 3, 4, 5, 6, 99);
const statusId = literal(0, 1, 2, 99);
const actionId = literal(0, 1, 2, 3, 4, 99);
const digest = str({ max: 200, pattern: /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/ });

/** The enforcement mode of the policy that decided. */
export type PolicyMode = 'enforce' | 'dry-run' | 'learn';

const decisionSchema = obj({
  /** The policy that decided (`namespace/name` or `name`). Empty string when default-deny applied. */
  policy: str({ max: 253 }),
  /** The rule inside the policy that matched, if any. */
  rule: optional(str({ max: 253 })),
  /** What happened: in dry-run/learn the traffic is allowed and `would_have` says what enforce would do. */
  action: literal('allow', 'deny'),
  mode: literal('enforce', 'dry-run', 'learn'),
  would_have: optional(literal('allow', 'deny')),
  /** Why, in words safe to show (never internals). */
  reason: optional(text),
});
/** The policy decision stamped on an event. */
export type PolicyDecision = Infer<typeof decisionSchema>;

const decision: Parser<PolicyDecision> = (v, path) => {
  const d = decisionSchema(v, path);
  if (d.mode !== 'enforce' && d.would_have === undefined) throw invalid(`${path}.would_have`, 'is required in dry-run and learn mode');
  if (d.mode === 'enforce' && d.would_have !== undefined) throw invalid(`${path}.would_have`, 'only applies to dry-run and learn mode');
  return d;
};

const workloadSchema = obj({ spiffe_id: spiffeId });
/** The workload an event is about (the one whose agent observed it). */
export type WorkloadRef = Infer<typeof workloadSchema>;

const metadataSchema = obj({
  version: str({ max: 16, pattern: /^\d+\.\d+\.\d+$/ }),
  product: obj({ name: literal('Ward'), vendor_name: literal('Ward'), version: optional(str({ max: 64 })) }),
  /** Unique id of this event (assigned by the agent). */
  uid: optional(str({ max: 128 })),
  /** Correlation id (the incident a detection belongs to). */
  correlation_uid: optional(str({ max: 128 })),
});

const endpointSchema = obj({
  ip: optional(ipLiteral),
  port: optional(port),
  hostname: optional(name),
  /** The peer's SPIFFE ID, when it presented an SVID (or `unauthenticated` is implied by absence). */
  spiffe_id: optional(spiffeId),
  /** Service name the agent resolved the endpoint to (upstream name). */
  svc_name: optional(name),
});

const base = {
  category_uid: int({ min: 0, max: 99 }),
  activity_id: int({ min: 0, max: 99 }),
  type_uid: int({ min: 0 }),
  time: int({ min: 0 }),
  severity_id: sevId,
  status_id: optional(statusId),
  message: optional(text),
  metadata: metadataSchema,
  workload: workloadSchema,
  decision: optional(decision),
};

export const networkActivitySchema = obj({
  ...base,
  class_uid: literal(4001),
  action_id: optional(actionId),
  src_endpoint: endpointSchema,
  dst_endpoint: endpointSchema,
  connection_info: obj({
    protocol_name: literal('tcp', 'udp'),
    /** 1 inbound, 2 outbound, 3 lateral (OCSF `direction_id`). */
    direction_id: literal(0, 1, 2, 3, 99),
  }),
  traffic: optional(obj({ bytes_in: count, bytes_out: count })),
  /** Milliseconds the connection lasted. */
  duration: optional(count),
  tls: optional(obj({ version: str({ max: 16 }), mtls: bool })),
});
export type NetworkActivity = Infer<typeof networkActivitySchema>;

const HTTP_METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;
export const httpActivitySchema = obj({
  ...base,
  class_uid: literal(4002),
  action_id: optional(actionId),
  src_endpoint: endpointSchema,
  dst_endpoint: endpointSchema,
  http_request: obj({
    http_method: str({ max: 32, pattern: HTTP_METHOD }),
    url: obj({
      path: text,
      hostname: optional(name),
      /** The route template the path matched (`/orders/{id}`), so events aggregate. */
      path_template: optional(text),
    }),
    version: optional(literal('HTTP/1.0', 'HTTP/1.1', 'HTTP/2')),
    user_agent: optional(text),
    /** The end user's JWT subject, if a JWT was validated. */
    user: optional(obj({ uid: text, issuer: optional(text) })),
  }),
  http_response: optional(obj({
    code: int({ min: 100, max: 599 }),
    /** Milliseconds from request to response head. */
    latency: optional(count),
    /** gRPC status code when the call was gRPC. */
    grpc_status: optional(int({ min: 0, max: 16 })),
  })),
  duration: optional(count),
});
export type HttpActivity = Infer<typeof httpActivitySchema>;

const processSchema = obj({
  pid: int({ min: 0, max: 2 ** 32 }),
  name: optional(str({ max: 255 })),
  cmd_line: optional(str({ max: EVENT_LIMITS.maxCommandLineLength })),
  file: optional(obj({ path: text, hashes: optional(arr(obj({ algorithm: literal('SHA-256'), value: str({ max: 64, pattern: /^[0-9a-f]{64}$/ }) }), { max: 4 })) })),
  user: optional(obj({ uid: int({ min: 0, max: 2 ** 32 }), name: optional(str({ max: 255 })) })),
  parent_process: optional(obj({ pid: int({ min: 0, max: 2 ** 32 }), name: optional(str({ max: 255 })), cmd_line: optional(str({ max: EVENT_LIMITS.maxCommandLineLength })) })),
  container: optional(obj({ uid: optional(str({ max: 128 })), image_digest: optional(digest) })),
});

export const processActivitySchema = obj({
  ...base,
  class_uid: literal(1007),
  action_id: optional(actionId),
  process: processSchema,
  /** The process that acted (for launch: the parent). */
  actor: optional(obj({ process: processSchema })),
  /** For `open`: the file touched. */
  file: optional(obj({ path: text })),
  /** The runtime rule that matched, if any (Falco-compatible rule name). */
  rule: optional(obj({ name: str({ max: 253 }) })),
});
export type ProcessActivity = Infer<typeof processActivitySchema>;

export const detectionFindingSchema = obj({
  ...base,
  class_uid: literal(2004),
  finding_info: obj({
    uid: str({ min: 1, max: 128 }),
    title: str({ min: 1, max: 512 }),
    desc: optional(text),
    types: optional(arr(str({ max: 128 }), { max: 32 })),
    analytic: optional(obj({ name: str({ max: 253 }), type: optional(literal('rule', 'behavioral', 'correlation', 'other')) })),
    first_seen_time: optional(int({ min: 0 })),
    last_seen_time: optional(int({ min: 0 })),
  }),
  /** The events that make up the finding (an incident correlates several layers). */
  related_events: optional(arr(obj({ uid: str({ max: 128 }), class_uid: literal(4001, 4002, 1007, 2004, 2002, 3003) }), { max: EVENT_LIMITS.maxListLength })),
  risk_score: optional(int({ min: 0, max: 100 })),
});
export type DetectionFinding = Infer<typeof detectionFindingSchema>;

export const vulnerabilityFindingSchema = obj({
  ...base,
  class_uid: literal(2002),
  finding_info: obj({ uid: str({ min: 1, max: 128 }), title: str({ min: 1, max: 512 }), desc: optional(text) }),
  /** The scanned image. */
  resources: arr(obj({ type: literal('container_image'), uid: digest, name: optional(text) }), { min: 1, max: 16 }),
  vulnerabilities: arr(obj({
    cve: obj({
      uid: str({ min: 1, max: 64 }),
      cvss: optional(arr(obj({ base_score: num({ min: 0, max: 10 }), version: optional(str({ max: 8 })) }), { max: 8 })),
    }),
    severity: literal('Unknown', 'Low', 'Medium', 'High', 'Critical'),
    is_fix_available: bool,
    affected_packages: arr(obj({ name: str({ max: 512 }), version: str({ max: 256 }), fixed_in_version: optional(str({ max: 256 })) }), { max: 64 }),
  }), { max: 4096 }),
});
export type VulnerabilityFinding = Infer<typeof vulnerabilityFindingSchema>;

export const authorizationSchema = obj({
  ...base,
  class_uid: literal(3003),
  /** Who asked: a peer workload and/or an end user. */
  actor: obj({
    spiffe_id: optional(spiffeId),
    user: optional(obj({ uid: text, issuer: optional(text) })),
  }),
  src_endpoint: optional(endpointSchema),
  dst_endpoint: optional(endpointSchema),
  /** What was authorized: `network`, `http`, `runtime`, `svid`, `admin`. */
  privileges: optional(arr(str({ max: 253 }), { max: 32 })),
});
export type Authorization = Infer<typeof authorizationSchema>;

/** Any event Ward produces. Narrow on `class_uid`. */
export type WardEvent =
  | NetworkActivity
  | HttpActivity
  | ProcessActivity
  | DetectionFinding
  | VulnerabilityFinding
  | Authorization;

export type EventClassUid = WardEvent['class_uid'];

export const EVENT_SCHEMAS: Readonly<Record<EventClassUid, Parser<WardEvent>>> = Object.freeze({
  4001: networkActivitySchema,
  4002: httpActivitySchema,
  1007: processActivitySchema,
  2004: detectionFindingSchema,
  2002: vulnerabilityFindingSchema,
  3003: authorizationSchema,
});

/** Category of each class (OCSF). */
export const CATEGORY_OF: Readonly<Record<EventClassUid, number>> = Object.freeze({
  4001: 4, 4002: 4, 1007: 1, 2004: 2, 2002: 2, 3003: 3,
});
