/**
 * Store URLs: `:memory:` / `sqlite::memory:` (ephemeral), `sqlite:///abs/path.db`,
 * `sqlite:relative/path.db`, and `postgres://user@host:port/db?schema=ward` (also
 * `postgresql://`). `schema` is Ward's own parameter (default `public`); `connect_timeout`
 * (seconds) bounds connection attempts; all other parameters go to `pg` unchanged.
 */
import { StoreError } from './errors.js';

export type StoreLocation =
  | { readonly dialect: 'sqlite'; readonly path: string }
  | { readonly dialect: 'postgres'; readonly connectionString: string; readonly schema: string; readonly connectTimeoutMs: number };

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

function bad(url: string, why: string): StoreError {
  // Never echo the URL: it may carry a password.
  return new StoreError('ERR_STORE_URL_INVALID', `store URL: ${why}`, { details: { scheme: url.split(':')[0] } });
}

/** Parses a store URL. @example parseStoreUrl('sqlite:///var/lib/ward/ward.db') */
export function parseStoreUrl(url: string): StoreLocation {
  if (url === ':memory:' || url === 'sqlite::memory:' || url === 'sqlite://:memory:') return { dialect: 'sqlite', path: ':memory:' };
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length);
    const path = rest.startsWith('///') ? rest.slice(2) : rest.startsWith('//') ? null : rest;
    if (path === null || path.length === 0 || path.includes('\0') || path.includes('?')) throw bad(url, 'expected sqlite:///absolute/path or sqlite:relative/path');
    return { dialect: 'sqlite', path: decodeURIComponent(path) };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw bad(url, 'not a valid postgres:// URL');
    }
    if (!parsed.hostname) throw bad(url, 'postgres URL needs a host');
    const schema = parsed.searchParams.get('schema') ?? 'public';
    if (!SCHEMA_RE.test(schema)) throw bad(url, 'schema must match [a-z_][a-z0-9_]{0,62}');
    parsed.searchParams.delete('schema');
    const timeout = parsed.searchParams.get('connect_timeout');
    const connectTimeoutMs = timeout === null ? DEFAULT_CONNECT_TIMEOUT_MS : Number(timeout) * 1000;
    if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs <= 0 || connectTimeoutMs > 600_000) throw bad(url, 'connect_timeout must be 1..600 seconds');
    parsed.searchParams.delete('connect_timeout');
    return { dialect: 'postgres', connectionString: parsed.toString(), schema, connectTimeoutMs };
  }
  throw bad(url, 'expected :memory:, sqlite:///path or postgres://…');
}
