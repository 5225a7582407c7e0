/**
 * The strict codec for events and agent batches. Everything an agent sends is untrusted:
 * `decodeBatch` bounds the bytes before parsing, bounds the event count, validates every event
 * against its class schema (unknown fields rejected) and returns fresh typed objects.
 * Every failure is an {@link EventError} with a stable code.
 */
import { Buffer } from 'node:buffer';
import type { Clock } from '../core/clock.js';
import { EventError } from './errors.js';
import { arr, int, invalid, isPlainObject, obj, str, type Parser } from './schema.js';
import {
  CATEGORY_OF, EVENT_SCHEMAS, OCSF_VERSION,
  type EventClassUid, type WardEvent,
} from './types.js';

/** One event with the agent's sequence number (the server stores (agentId, seq) once). */
export interface SequencedEvent {
  readonly seq: number;
  readonly event: WardEvent;
}

/** What an agent posts: `{ agentId, batch: [{ seq, event }] }`. */
export interface AgentBatch {
  readonly agentId: string;
  readonly batch: readonly SequencedEvent[];
}

export interface BatchLimits {
  /** Largest encoded batch accepted, in bytes. */
  readonly maxBytes: number;
  /** Most events in one batch. */
  readonly maxEvents: number;
}

// Invalid UTF-8 is an error, not silently replaced.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export const DEFAULT_BATCH_LIMITS: BatchLimits = Object.freeze({ maxBytes: 1024 * 1024, maxEvents: 1000 });

/** Agent ids are printable ASCII without spaces (a SPIFFE ID or an opaque id). */
const agentIdParser = str({ min: 1, max: 2048, pattern: /^[\x21-\x7e]+$/ });

/**
 * Validates one untrusted event value (already JSON-parsed).
 *
 * @example
 * const ev = decodeEvent(JSON.parse(line)); // throws EventError on anything malformed
 */
export function decodeEvent(value: unknown, path = 'event'): WardEvent {
  if (!isPlainObject(value)) throw invalid(path, 'expected an object');
  const classUid = value['class_uid'];
  if (typeof classUid !== 'number' || !Object.hasOwn(EVENT_SCHEMAS, classUid)) {
    throw new EventError('ERR_EVENT_UNKNOWN_CLASS', `${path}.class_uid: ${JSON.stringify(classUid) ?? 'undefined'} is not an event class Ward accepts`, { details: { path: `${path}.class_uid` } });
  }
  const ev = EVENT_SCHEMAS[classUid as EventClassUid](value, path);
  if (ev.category_uid !== CATEGORY_OF[ev.class_uid]) throw invalid(`${path}.category_uid`, `must be ${CATEGORY_OF[ev.class_uid]} for class ${ev.class_uid}`);
  if (ev.type_uid !== ev.class_uid * 100 + ev.activity_id) throw invalid(`${path}.type_uid`, 'must be class_uid * 100 + activity_id');
  return ev;
}

const sequencedShape = obj({ seq: int({ min: 0 }), event: (v: unknown, p: string) => decodeEvent(v, p) });
const batchShape = (maxEvents: number): Parser<AgentBatch> => obj({ agentId: agentIdParser, batch: arr(sequencedShape, { max: maxEvents }) });

function tooLarge(limit: 'maxBytes' | 'maxEvents', max: number): EventError {
  return new EventError('ERR_EVENT_TOO_LARGE', `batch exceeds ${limit} (${max})`, { details: { limit, max } });
}

/**
 * Decodes an agent batch from its wire form (JSON text or bytes).
 *
 * @example
 * const { agentId, batch } = decodeBatch(request.body, { maxBytes: 1_000_000, maxEvents: 500 });
 */
export function decodeBatch(input: string | Uint8Array, limits: BatchLimits = DEFAULT_BATCH_LIMITS): AgentBatch {
  const bytes = typeof input === 'string' ? (input.length > limits.maxBytes ? Infinity : Buffer.byteLength(input, 'utf8')) : input.byteLength;
  if (bytes > limits.maxBytes) throw tooLarge('maxBytes', limits.maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(typeof input === 'string' ? input : UTF8.decode(input));
  } catch (cause) {
    throw new EventError('ERR_EVENT_JSON', 'batch is not valid UTF-8 JSON', { cause });
  }
  return decodeBatchValue(value, limits);
}

/** Validates an already-parsed batch value (for servers whose framework parsed the JSON). */
export function decodeBatchValue(value: unknown, limits: BatchLimits = DEFAULT_BATCH_LIMITS): AgentBatch {
  if (isPlainObject(value) && Array.isArray(value['batch']) && value['batch'].length > limits.maxEvents) {
    throw tooLarge('maxEvents', limits.maxEvents);
  }
  const batch = batchShape(limits.maxEvents)(value, '$');
  for (let i = 1; i < batch.batch.length; i++) {
    if ((batch.batch[i] as SequencedEvent).seq <= (batch.batch[i - 1] as SequencedEvent).seq) {
      throw new EventError('ERR_EVENT_SEQUENCE', `$.batch[${i}].seq: sequence numbers must be strictly increasing`, { details: { path: `$.batch[${i}].seq` } });
    }
  }
  return batch;
}

/** Encodes a batch for the wire, validating it first so an agent never sends what the server rejects. */
export function encodeBatch(batch: AgentBatch, limits: BatchLimits = DEFAULT_BATCH_LIMITS): string {
  const checked = decodeBatchValue(JSON.parse(JSON.stringify(batch)) as unknown, limits);
  const text = JSON.stringify(checked);
  if (Buffer.byteLength(text, 'utf8') > limits.maxBytes) throw tooLarge('maxBytes', limits.maxBytes);
  return text;
}

type Stamped = 'category_uid' | 'type_uid' | 'time' | 'metadata';
type Distribute<E> = E extends WardEvent ? Omit<E, Stamped> & { readonly time?: number; readonly uid?: string } : never;
/** The fields a producer supplies; `createEvent` fills in category, type, time and metadata. */
export type EventInput = Distribute<WardEvent>;

/**
 * Builds a valid event: fills `category_uid`, `type_uid`, `time` (from the clock) and
 * `metadata`, then validates it, so producers cannot emit what the server would reject.
 *
 * @example
 * createEvent({ class_uid: 4001, activity_id: 6, severity_id: 1, workload: { spiffe_id }, ... }, clock);
 */
export function createEvent<E extends EventInput>(input: E, clock: Clock, productVersion?: string): WardEvent {
  const { uid, time, ...rest } = input as EventInput & { uid?: string };
  const draft = {
    ...rest,
    category_uid: CATEGORY_OF[input.class_uid],
    type_uid: input.class_uid * 100 + input.activity_id,
    time: time ?? clock.now(),
    metadata: {
      version: OCSF_VERSION,
      product: productVersion === undefined ? { name: 'Ward', vendor_name: 'Ward' } : { name: 'Ward', vendor_name: 'Ward', version: productVersion },
      ...(uid === undefined ? {} : { uid }),
    },
  };
  return decodeEvent(JSON.parse(JSON.stringify(draft)) as unknown);
}

/**
 * The event in strict OCSF form for sinks that validate against the OCSF schema: Ward's
 * `workload` and `decision` objects move under OCSF's `unmapped`.
 *
 * @example sink.write(toStrictOcsf(event))
 */
export function toStrictOcsf(event: WardEvent): Record<string, unknown> {
  const { workload, decision, ...ocsf } = event;
  return { ...ocsf, unmapped: decision === undefined ? { workload } : { workload, decision } };
}
