/**
 * Audit action names by route, for requests refused before their handler ran (body too large,
 * not JSON, no credentials): the audit log names them the same way as the handler would.
 */
export const ROUTE_ACTIONS: Readonly<Record<string, string>> = Object.freeze({
  'POST /v1/apply': 'apply',
  'DELETE /v1/policies/:name': 'policy.delete',
  'DELETE /v1/entries/:id': 'entry.delete',
  'POST /v1/agents/:id/revoke': 'agent.revoke',
  'POST /v1/tokens/join': 'join-token.create',
  'POST /v1/tokens/admin': 'admin-token.create',
  'POST /v1/scans': 'scan.import',
  'POST /v1/provenance': 'provenance.import',
  'POST /v1/agent/attest': 'agent.attest',
  'POST /v1/agent/renew': 'agent.renew',
  'POST /v1/agent/svids': 'svid.issue',
  'POST /v1/agent/events': 'events.ingest',
  'GET /v1/agent/watch': 'agent.watch',
});

export function routeAction(method: string, url: string | undefined): string {
  return ROUTE_ACTIONS[`${method} ${url ?? ''}`] ?? `${method} ${url ?? 'unknown-route'}`.slice(0, 128);
}
