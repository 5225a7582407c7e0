/**
 * Audit records as the API shows them. The store's log is append-only (who, what, when,
 * before/after); a refused request is appended as `<action>.denied` with its code in `after`,
 * so the log answers "what was tried and refused" as well as "what changed".
 */
import type { AuditRecord } from '../../api/types.js';
import type { AuditRecord as StoredAudit } from '../../store/index.js';
import type { ServerContext } from '../context.js';

const DENIED = '.denied';

export async function auditDenied(ctx: ServerContext, entry: { actor: string; action: string; resource: string; code: string }): Promise<void> {
  await ctx.store.audit.append({
    actor: entry.actor.slice(0, 512),
    action: `${entry.action}${DENIED}`.slice(0, 128),
    resource: (entry.resource === '' ? '-' : entry.resource).slice(0, 1024),
    after: { code: entry.code },
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
