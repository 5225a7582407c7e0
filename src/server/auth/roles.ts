/**
 * Admin roles and what each may do. One table, read top to bottom; routes name the permission
 * they need and {@link can} answers. Unknown roles can do nothing (fail closed).
 */
export const ROLES = ['admin', 'operator', 'viewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export type Permission =
  | 'read' // workloads, entries, policies, agents, scans
  | 'write' // apply/delete policies and entries, import scans, revoke agents
  | 'join-token.create'
  | 'audit.read'
  | 'admin-token.create';

const GRANTS: Readonly<Record<Role, readonly Permission[]>> = Object.freeze({
  admin: ['read', 'write', 'join-token.create', 'audit.read', 'admin-token.create'],
  operator: ['read', 'write', 'join-token.create'],
  viewer: ['read'],
  auditor: ['read', 'audit.read'],
});

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function can(role: string, permission: Permission): boolean {
  return isRole(role) && GRANTS[role].includes(permission);
}
