/**
 * Learn mode: propose least-privilege ALLOW policies from observed traffic. Each destination gets
 * one AccessPolicy whose rules allow exactly the observed (source, port[, method, path]) tuples,
 * with variable path segments (numbers, UUIDs, long hex) generalised to `{*}`. Proposals are
 * emitted in `dry-run` mode so they run against real traffic before anyone enforces them.
 */
import { EMPTY_SELECTOR } from '../../identity/selector.js';
import { parseIp } from '../match.js';
import { normalizePath } from '../path.js';
import type { AccessPolicy, AccessRule, Operation, Peer, PolicyMode, Transport } from '../model.js';

/** One observed connection or request (what the agent records while a policy is in learn mode). */
export interface Observation {
  readonly source: { readonly spiffeId: string } | { readonly ip: string };
  readonly destination: string;
  readonly port: number;
  readonly protocol?: Transport;
  readonly http?: { readonly method: string; readonly path: string };
}

export interface ProposeOptions {
  /** Mode of the proposed policies (default `dry-run`). */
  readonly mode?: PolicyMode;
  /** Policy name for a destination (default: derived from its SPIFFE path). */
  readonly name?: (destination: string) => string;
  /** Max distinct paths per (source, port) before falling back to any path (default 20). */
  readonly maxPaths?: number;
}

const VARIABLE_SEGMENT = /^(?:[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$/;

/** `/orders/123/items` -> `/orders/{*}/items`; paths that cannot be normalised are dropped. */
export function generalisePath(raw: string): string | undefined {
  const norm = normalizePath(raw);
  if (!norm.ok) return undefined;
  return norm.path
    .split('/')
    .map((seg) => (VARIABLE_SEGMENT.test(seg) ? '{*}' : seg.replace(/[{}*]/g, '')))
    .join('/');
}

function defaultName(destination: string): string {
  const slug = destination.replace(/^spiffe:\/\//, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `learned-${slug}`.slice(0, 240).replace(/-+$/, '');
}

/**
 * Proposes one ALLOW AccessPolicy per observed destination. Sources are grouped per port: one
 * rule per (port, protocol) listing the SPIFFE IDs and addresses seen, with the HTTP methods and
 * generalised paths seen when the traffic was HTTP.
 *
 * @example
 * const proposals = proposePolicies(observations);
 * console.log(policiesToYaml(proposals));
 */
export function proposePolicies(observations: readonly Observation[], options: ProposeOptions = {}): AccessPolicy[] {
  const maxPaths = options.maxPaths ?? 20;
  // destination -> "port/protocol" -> source key -> {methods, paths, http}
  const byDest = new Map<string, Map<string, Map<string, { peer: Peer; methods: Set<string>; paths: Set<string>; tcp: boolean }>>>();
  for (const o of observations) {
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) continue;
    let peer: Peer;
    let key: string;
    if ('spiffeId' in o.source) {
      peer = { spiffeIds: [o.source.spiffeId] };
      key = o.source.spiffeId;
    } else {
      if (!parseIp(o.source.ip)) continue;
      peer = { unauthenticated: true, ipBlocks: [{ cidr: o.source.ip, except: [] }] };
      key = `ip:${o.source.ip}`;
    }
    const portKey = `${o.port}/${o.protocol ?? 'TCP'}`;
    let ports = byDest.get(o.destination);
    if (!ports) byDest.set(o.destination, (ports = new Map()));
    let sources = ports.get(portKey);
    if (!sources) ports.set(portKey, (sources = new Map()));
    let seen = sources.get(key);
    if (!seen) sources.set(key, (seen = { peer, methods: new Set(), paths: new Set(), tcp: false }));
    if (o.http) {
      const path = generalisePath(o.http.path);
      if (path !== undefined && /^[A-Z][A-Z0-9_-]{0,31}$/.test(o.http.method)) {
        seen.methods.add(o.http.method);
        seen.paths.add(path);
      }
    } else seen.tcp = true;
  }
  const out: AccessPolicy[] = [];
  for (const [destination, ports] of [...byDest].sort(([a], [b]) => a.localeCompare(b))) {
    const rules: AccessRule[] = [];
    for (const [portKey, sources] of [...ports].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
      const [portText, protocol] = portKey.split('/') as [string, Transport];
      const port = Number(portText);
      // Sources that used the port as plain TCP (or too many paths) get the port; the others get
      // their methods and paths. Sources with identical operations share a rule.
      const groups = new Map<string, { peers: Peer[]; op: Operation }>();
      for (const seen of sources.values()) {
        const op: Operation = seen.tcp || seen.paths.size === 0 || seen.paths.size > maxPaths
          ? { ports: [{ port, endPort: port, protocol }] }
          : { ports: [{ port, endPort: port, protocol }], methods: [...seen.methods].sort(), paths: [...seen.paths].sort() };
        const k = JSON.stringify(op);
        const g = groups.get(k);
        if (g) g.peers.push(seen.peer);
        else groups.set(k, { peers: [seen.peer], op });
      }
      for (const g of groups.values()) rules.push({ peers: mergePeers(g.peers), operations: [g.op] });
    }
    out.push({
      kind: 'AccessPolicy',
      name: (options.name ?? defaultName)(destination),
      mode: options.mode ?? 'dry-run',
      action: 'ALLOW',
      subject: { selector: EMPTY_SELECTOR, spiffeIds: [destination] },
      ingress: rules,
      origin: { importedFrom: 'ward.dev/learn' },
    });
  }
  return out;
}

/** One peer listing every SPIFFE ID, one per plaintext address (they cannot be merged with identities). */
function mergePeers(peers: readonly Peer[]): Peer[] {
  const ids = peers.flatMap((p) => p.spiffeIds ?? []).sort();
  const addresses = peers.filter((p) => p.ipBlocks).flatMap((p) => p.ipBlocks!).sort((a, b) => a.cidr.localeCompare(b.cidr));
  const out: Peer[] = [];
  if (ids.length > 0) out.push({ spiffeIds: ids });
  if (addresses.length > 0) out.push({ unauthenticated: true, ipBlocks: addresses });
  return out;
}
