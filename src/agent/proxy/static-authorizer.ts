/**
 * A small rule-list {@link Authorizer} built from in-memory objects (Istio semantics: DENY
 * before ALLOW, default deny), used only by the proxy layers' unit tests. The agent itself
 * decides with `PolicyAuthorizer` in both modes (ADR 0045); there is no document kind for these
 * rules any more. To be removed once those tests build a `PolicyAuthorizer` instead.
 */
import type { Authorizer, ConnectionContext, Decision, RequestContext } from './authorizer.js';
import { DEFAULT_DENY } from './authorizer.js';

export interface StaticRule {
  readonly name: string;
  readonly direction?: 'inbound' | 'outbound';
  /** Source SPIFFE IDs; `*` any, `prefix*` a prefix, `unauthenticated` plaintext callers. */
  readonly from?: readonly string[];
  /** Outbound only: target service names. */
  readonly to?: readonly string[];
  readonly ports?: readonly number[];
  readonly methods?: readonly string[];
  /** Exact, `prefix*` or `*suffix` matches on the normalised path. */
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
  readonly hosts?: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  /** `iss/sub` of the end-user JWT; `*` = any valid JWT. Presence requires a valid JWT. */
  readonly requestPrincipals?: readonly string[];
}

export interface StaticPolicy {
  readonly name: string;
  readonly action: 'ALLOW' | 'DENY';
  readonly mode: 'enforce' | 'dry-run';
  readonly rules: readonly StaticRule[];
}

type Matcher = (value: string) => boolean;

function compileStrings(patterns: readonly string[] | undefined, caseless = false): Matcher | undefined {
  if (patterns === undefined) return undefined;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  let any = false;
  for (const raw of patterns) {
    const p = caseless ? raw.toLowerCase() : raw;
    if (p === '*') any = true;
    else if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else if (p.startsWith('*')) suffixes.push(p.slice(1));
    else exact.add(p);
  }
  if (any) return () => true;
  return (value) => {
    const v = caseless ? value.toLowerCase() : value;
    if (exact.has(v)) return true;
    for (const p of prefixes) if (v.startsWith(p)) return true;
    for (const s of suffixes) if (v.endsWith(s)) return true;
    return false;
  };
}

interface CompiledRule {
  readonly ref: string;
  readonly action: 'ALLOW' | 'DENY';
  readonly dryRun: boolean;
  readonly direction: 'inbound' | 'outbound';
  readonly from: Matcher | undefined;
  readonly to: Matcher | undefined;
  readonly ports: ReadonlySet<number> | undefined;
  readonly hasL7: boolean;
  readonly methods: ReadonlySet<string> | undefined;
  readonly paths: Matcher | undefined;
  readonly notPaths: Matcher | undefined;
  readonly hosts: Matcher | undefined;
  readonly headers: readonly (readonly [string, string])[];
  readonly principals: Matcher | undefined;
}

function matchesConnection(rule: CompiledRule, ctx: ConnectionContext): boolean {
  if (rule.direction !== ctx.direction) return false;
  if (rule.ports !== undefined && !rule.ports.has(ctx.port)) return false;
  if (rule.from !== undefined && !rule.from(ctx.source.spiffeId)) return false;
  if (rule.to !== undefined && !rule.to(ctx.destination)) return false;
  return true;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

function matchesRequest(rule: CompiledRule, ctx: RequestContext): boolean {
  if (!matchesConnection(rule, ctx.connection)) return false;
  if (rule.methods !== undefined && !rule.methods.has(ctx.method)) return false;
  if (rule.paths !== undefined && !rule.paths(ctx.path)) return false;
  if (rule.notPaths !== undefined && rule.notPaths(ctx.path)) return false;
  if (rule.hosts !== undefined && !rule.hosts(ctx.host)) return false;
  for (const [name, want] of rule.headers) if (headerValue(ctx.headers[name]) !== want) return false;
  if (rule.principals !== undefined) {
    const claims = ctx.jwtClaims;
    if (claims === undefined) return false;
    if (!rule.principals(`${String(claims.iss)}/${String(claims.sub)}`)) return false;
  }
  return true;
}

export class StaticAuthorizer implements Authorizer {
  readonly version: string;
  readonly #deny: readonly CompiledRule[];
  readonly #allow: readonly CompiledRule[];

  constructor(policies: readonly StaticPolicy[], version = 'static') {
    this.version = version;
    const deny: CompiledRule[] = [];
    const allow: CompiledRule[] = [];
    for (const policy of policies) {
      for (const r of policy.rules) {
        const compiled: CompiledRule = {
          ref: `${policy.name}/${r.name}`,
          action: policy.action,
          dryRun: policy.mode === 'dry-run',
          direction: r.direction ?? 'inbound',
          from: compileStrings(r.from),
          to: compileStrings(r.to),
          ports: r.ports === undefined ? undefined : new Set(r.ports),
          hasL7: [r.methods, r.paths, r.notPaths, r.hosts, r.headers, r.requestPrincipals].some((x) => x !== undefined),
          methods: r.methods === undefined ? undefined : new Set(r.methods.map((m) => m.toUpperCase())),
          paths: compileStrings(r.paths),
          notPaths: compileStrings(r.notPaths),
          hosts: compileStrings(r.hosts, true),
          headers: Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
          principals: compileStrings(r.requestPrincipals),
        };
        (policy.action === 'DENY' ? deny : allow).push(compiled);
      }
    }
    this.#deny = deny;
    this.#allow = allow;
  }

  authorizeConnection(ctx: ConnectionContext): Decision {
    // A DENY rule with request conditions cannot decide a connection; it is applied per request.
    for (const rule of this.#deny) {
      if (!rule.hasL7 && matchesConnection(rule, ctx)) return rule.dryRun ? { allow: true, reference: rule.ref, dryRun: true } : { allow: false, reference: rule.ref };
    }
    for (const rule of this.#allow) {
      if (matchesConnection(rule, ctx)) return { allow: true, reference: rule.ref, dryRun: rule.dryRun };
    }
    return DEFAULT_DENY;
  }

  authorizeRequest(ctx: RequestContext): Decision {
    for (const rule of this.#deny) {
      if (matchesRequest(rule, ctx)) return rule.dryRun ? { allow: true, reference: rule.ref, dryRun: true } : { allow: false, reference: rule.ref };
    }
    for (const rule of this.#allow) {
      if (matchesRequest(rule, ctx)) return { allow: true, reference: rule.ref, dryRun: rule.dryRun };
    }
    return DEFAULT_DENY;
  }
}
