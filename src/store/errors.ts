/**
 * Error codes of the store. Callers (the server's routes) map them to HTTP statuses at the edge:
 * CONFLICT -> 409, NOT_FOUND -> 404, UNAVAILABLE -> 503.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const STORE_ERRORS = defineErrorCodes('store', {
  ERR_STORE_UNAVAILABLE: 'The database cannot be reached, refused the connection, timed out or the store is closed.',
  ERR_STORE_CONFLICT: 'A write collided with existing data (duplicate key) or with a concurrent change (stale version).',
  ERR_STORE_NOT_FOUND: 'The record to update or delete does not exist.',
  ERR_STORE_URL_INVALID: 'A store URL is not `sqlite:///path`, `:memory:` or `postgres://…` (with an optional valid `schema`).',
  ERR_STORE_MIGRATION: 'The schema could not be migrated, or the database was migrated by a newer Ward.',
  ERR_STORE_INVALID: 'A value handed to the store is out of range or malformed; `details.field` names it.',
  ERR_STORE_QUERY: 'A query failed for a reason other than conflict or unavailability; the message carries no SQL.',
});

export type StoreErrorCode = CodeOf<typeof STORE_ERRORS>;

export class StoreError extends WardError<StoreErrorCode> {
  override readonly name = 'StoreError';
}
