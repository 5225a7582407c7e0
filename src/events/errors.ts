/**
 * Error codes of the event model. Decoding untrusted event JSON fails with one of these, never
 * with a bare TypeError, so the ingest endpoint can answer 4xx with a stable code.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const EVENT_ERRORS = defineErrorCodes('events', {
  ERR_EVENT_JSON: 'An event batch is not well-formed JSON.',
  ERR_EVENT_TOO_LARGE: 'An event batch exceeds the byte or event-count limit; `details.limit` names it.',
  ERR_EVENT_INVALID: 'An event or batch field is missing, of the wrong type or out of range; `details.path` names it.',
  ERR_EVENT_UNKNOWN_CLASS: 'An event has a `class_uid` Ward does not accept.',
  ERR_EVENT_SEQUENCE: 'Sequence numbers in a batch are not strictly increasing.',
});

export type EventErrorCode = CodeOf<typeof EVENT_ERRORS>;

export class EventError extends WardError<EventErrorCode> {
  override readonly name = 'EventError';
}
