/**
 * Turns driver errors (better-sqlite3, pg, network) into StoreErrors with stable codes. The
 * message never includes SQL or parameter values (they may hold secrets or token hashes).
 */
import { StoreError } from './errors.js';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
const SQLITE_UNAVAILABLE = /^SQLITE_(CANTOPEN|BUSY|LOCKED|IOERR|NOTADB|CORRUPT|READONLY|FULL|PERM)/;

function field(e: unknown, name: string): unknown {
  return typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
}

export function toStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const code = field(e, 'code');
  const message = e instanceof Error ? e.message : String(e);
  if (typeof code === 'string') {
    // PostgreSQL SQLSTATE classes: 23505 unique violation, 40001/40P01 serialization/deadlock,
    // 08 connection exceptions, 57P0x shutdown, 53 insufficient resources.
    if (code === '23505' || code === '23P01' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      return new StoreError('ERR_STORE_CONFLICT', 'the record already exists', { cause: e });
    }
    if (code === '40001' || code === '40P01') return new StoreError('ERR_STORE_CONFLICT', 'a concurrent change collided; retry', { cause: e });
    if (NETWORK_CODES.has(code) || code.startsWith('08') || code.startsWith('57P') || code.startsWith('53') || SQLITE_UNAVAILABLE.test(code)) {
      return new StoreError('ERR_STORE_UNAVAILABLE', `database unavailable (${code})`, { cause: e });
    }
  }
  if (/timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error|driver has already been destroyed|Cannot use a pool after calling end|database connection is not open|Cannot open database|unable to open database/i.test(message)) {
    return new StoreError('ERR_STORE_UNAVAILABLE', 'database unavailable', { cause: e });
  }
  return new StoreError('ERR_STORE_QUERY', `query failed${typeof code === 'string' ? ` (${code})` : ''}`, { cause: e });
}

/** Runs `fn`, mapping any failure to a StoreError. */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toStoreError(e);
  }
}
