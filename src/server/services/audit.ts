/**
 * Audit records as the API shows them. The store's log is append-only (who, what, when,
 * before/after); a refused request is appended as `<action>.denied` with its code in `after`,
 * so the log answers "what was tried and refused" as well as "what changed".
 */
import type { AuditRecord } from '../../api/types.js';
import type { AuditRecord as StoredAudit } from '../../store/index.js';
import type { ServerContext } from '../context.js';
import type { SuppressedRow } from '../rate-limit.js';
import { ANONYMOUS } from '../auth/authenticate.js';

const DENIED = '.denied';

export async function auditDenied(ctx: ServerContext, entry: { actor: string; action: string; resource: string; code: string }): Promise<void> {
  await ctx.store.audit.append({
    actor: entry.actor.slice(0, 512),
    action: `${entry.action}${DENIED}`.slice(0, 128),
    resource: (entry.resource === '' ? '-' : entry.resource).slice(0, 1024),
    after: { code: entry.code },
  });
}

/** The action of an aggregate row for refusals answered 429 (ADR 0077); shown as `auth.rate_limited`, outcome denied. */
export const RATE_LIMITED_ACTION = 'auth.rate_limited';

/**
 * One row standing for every refusal of one source in one window that was answered 429
 * instead of being audited one by one: how many, with which codes, when. The source is the
 * normalised peer address (never a credential or its fingerprint).
 */
export async function auditRateLimited(ctx: ServerContext, row: SuppressedRow): Promise<void> {
  await ctx.store.audit.append({
    actor: ANONYMOUS,
    action: `${RATE_LIMITED_ACTION}${DENIED}`,
    resource: `source/${row.source}`.slice(0, 1024),
    after: {
      code: 'ERR_SERVER_RATE_LIMITED', count: row.count, surface: row.surface, sources: row.sources, codes: row.codes,
      windowStart: new Date(row.windowStart).toISOString(), windowEnd: new Date(row.windowEnd).toISOString(),
      first: new Date(row.first).toISOString(), last: new Date(row.last).toISOString(),
    },
  });
}

export function auditToWire(r: StoredAudit): AuditRecord {
  const denied = r.action.endsWith(DENIED);
  const code = denied && r.after !== null && typeof r.after === 'object' ? (r.after as { code?: unknown }).code : undefined;
  return {
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: denied ? r.action.slice(0, -DENIED.length) : r.action,
    resource: r.resource,
    outcome: denied ? 'denied' : 'ok',
    ...(typeof code === 'string' ? { code } : {}),
    before: r.before,
    after: r.after,
  };
}
