/**
 * Field readers shared by the Ward parser and the Kubernetes/Istio importers: ports, IP blocks,
 * selectors, peers, operations and `when` conditions, each validated with an exact field path.
 */
import { IdentityError } from '../identity/errors.js';
import { parseSelector, type Selector } from '../identity/selector.js';
import { isSpiffeIdText } from '../identity/workload.js';
import { compileGlob, compilePathPattern, compileStringPattern, parseCidr, cidrWithin } from './match.js';
import type { Condition, HeaderMatch, IpBlock, Operation, Peer, PolicyAction, PolicyMode, PortRange, Transport } from './model.js';
import { join, type DocReader } from './reader.js';

export const NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
export const METHOD_RE = /^([A-Z][A-Z0-9_-]{0,31}|\*)$/;
export const SHA256_RE = /^[0-9a-f]{64}$/;
export const PROTOCOLS: readonly Transport[] = ['TCP', 'UDP', 'SCTP'];
export const ACTIONS: readonly PolicyAction[] = ['ALLOW', 'DENY', 'AUDIT'];
export const MODES: readonly PolicyMode[] = ['enforce', 'dry-run', 'learn'];

/** `when` keys Ward understands; `[...]` keys take a name. HTTP-only keys are marked. */
export const CONDITION_KEYS: Readonly<Record<string, { http: boolean; kind: 'string' | 'ip' | 'port' | 'principal' }>> = {
  'request.headers': { http: true, kind: 'string' },
  'request.auth.principal': { http: true, kind: 'string' },
  'request.auth.audiences': { http: true, kind: 'string' },
  'request.auth.presenter': { http: true, kind: 'string' },
  'request.auth.claims': { http: true, kind: 'string' },
  'source.ip': { http: false, kind: 'ip' },
  'remote.ip': { http: false, kind: 'ip' },
  'source.namespace': { http: false, kind: 'string' },
  'source.principal': { http: false, kind: 'principal' },
  'destination.port': { http: false, kind: 'port' },
};

/** Splits `request.headers[x-a]` into `{base: 'request.headers', names: ['x-a']}`; claims may nest `[a][b]`. */
export function splitConditionKey(key: string): { base: string; names: string[] } | undefined {
  const m = /^([a-z.]+)((?:\[[^\][]+\])*)$/.exec(key);
  if (!m) return undefined;
  const names = m[2] ? m[2].slice(1, -1).split('][') : [];
  return { base: m[1]!, names };
}

export function patternCheck(ignoreCase = false) {
  return (s: string): string | undefined => {
    try {
      compileStringPattern(s, ignoreCase);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
}

export function spiffePatternCheck(s: string): string | undefined {
  const problem = patternCheck()(s);
  if (problem) return problem;
  if (!s.includes('*') && s.startsWith('spiffe://') && !isSpiffeIdText(s)) return `not a valid SPIFFE ID: ${s}`;
  if (!s.includes('*') && !s.startsWith('spiffe://')) return `expected spiffe://<trust-domain>/<path> (or a pattern with *): ${s}`;
  return undefined;
}

export function pathPatternCheck(s: string): string | undefined {
  try {
    compilePathPattern(s);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

export function globCheck(s: string): string | undefined {
  try {
    compileGlob(s);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

export function cidrCheck(s: string): string | undefined {
  try {
    parseCidr(s);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Reads a selector, converting identity-layer errors into policy issues. */
export function readSelector(r: DocReader, value: unknown, path: string): Selector | undefined {
  try {
    return parseSelector(value, path);
  } catch (error) {
    if (error instanceof IdentityError) return r.issue('ERR_POLICY_SELECTOR', String(error.details?.['path'] ?? path), error.message);
    throw error;
  }
}

/** Reads ports: `80`, `"80"`, `"8000-8080"`, or `{port, endPort, protocol}`. */
export function readPorts(r: DocReader, value: unknown, path: string): PortRange[] | undefined {
  const items = r.list(value, path, 1024);
  if (!items) return undefined;
  const out: PortRange[] = [];
  let ok = true;
  items.forEach((item, i) => {
    const p = join(path, i);
    const range = readPort(r, item, p);
    if (range) out.push(range);
    else ok = false;
  });
  return ok ? out : undefined;
}

function readPort(r: DocReader, item: unknown, p: string): PortRange | undefined {
  if (typeof item === 'number') {
    const n = r.integer(item, p, 1, 65535);
    return n === undefined ? undefined : { port: n, endPort: n, protocol: 'TCP' };
  }
  if (typeof item === 'string') {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(item);
    if (!m) return r.issue('ERR_POLICY_VALUE', p, `expected a port or range like 8000-8080, got ${JSON.stringify(item.slice(0, 40))}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 65535 || b < a) return r.issue('ERR_POLICY_VALUE', p, 'port range must be within 1-65535 and ascending');
    return { port: a, endPort: b, protocol: 'TCP' };
  }
  const obj = r.record(item, p);
  if (!obj) return undefined;
  r.fields(obj, p, ['port', 'endPort', 'protocol']);
  const port = r.integer(obj['port'], join(p, 'port'), 1, 65535);
  const endPort = obj['endPort'] === undefined ? port : r.integer(obj['endPort'], join(p, 'endPort'), 1, 65535);
  const protocol = obj['protocol'] === undefined ? 'TCP' : r.oneOf(obj['protocol'], join(p, 'protocol'), PROTOCOLS);
  if (port === undefined || endPort === undefined || protocol === undefined) return undefined;
  if (endPort < port) return r.issue('ERR_POLICY_VALUE', join(p, 'endPort'), 'endPort must not be below port');
  return { port, endPort, protocol };
}

export function readIpBlocks(r: DocReader, value: unknown, path: string): IpBlock[] | undefined {
  const items = r.list(value, path, 1024);
  if (!items) return undefined;
  const out: IpBlock[] = [];
  let ok = true;
  items.forEach((item, i) => {
    const p = join(path, i);
    if (typeof item === 'string') {
      const problem = cidrCheck(item);
      if (problem) {
        r.issue('ERR_POLICY_VALUE', p, problem);
        ok = false;
      } else out.push({ cidr: item, except: [] });
      return;
    }
    const obj = r.record(item, p);
    if (!obj) return void (ok = false);
    r.fields(obj, p, ['cidr', 'except']);
    const cidr = r.string(obj['cidr'], join(p, 'cidr'));
    const problem = cidr === undefined ? 'missing cidr' : cidrCheck(cidr);
    if (cidr !== undefined && problem) r.issue('ERR_POLICY_VALUE', join(p, 'cidr'), problem);
    const except = obj['except'] === undefined ? [] : r.strings(obj['except'], join(p, 'except'), cidrCheck);
    if (cidr === undefined || problem || except === undefined) return void (ok = false);
    const outer = parseCidr(cidr);
    except.forEach((e, j) => {
      if (!cidrWithin(parseCidr(e), outer)) {
        r.issue('ERR_POLICY_VALUE', `${join(p, 'except')}[${j}]`, `${e} is not inside ${cidr}`);
        ok = false;
      }
    });
    out.push({ cidr, except });
  });
  return ok ? out : undefined;
}

export const PEER_FIELDS = ['spiffeIds', 'notSpiffeIds', 'namespaces', 'notNamespaces', 'selector', 'ipBlocks', 'notIpBlocks', 'requestPrincipals', 'notRequestPrincipals', 'unauthenticated'];

export function readPeer(r: DocReader, value: unknown, path: string): Peer | undefined {
  const obj = r.record(value, path);
  if (!obj) return undefined;
  r.fields(obj, path, PEER_FIELDS);
  const before = r.issues.length;
  const peer: { -readonly [K in keyof Peer]: Peer[K] } = {};
  for (const f of ['spiffeIds', 'notSpiffeIds'] as const) if (obj[f] !== undefined) peer[f] = r.strings(obj[f], join(path, f), spiffePatternCheck);
  for (const f of ['namespaces', 'notNamespaces', 'requestPrincipals', 'notRequestPrincipals'] as const) {
    if (obj[f] !== undefined) peer[f] = r.strings(obj[f], join(path, f), patternCheck());
  }
  if (obj['selector'] !== undefined) peer.selector = readSelector(r, obj['selector'], join(path, 'selector'));
  for (const f of ['ipBlocks', 'notIpBlocks'] as const) if (obj[f] !== undefined) peer[f] = readIpBlocks(r, obj[f], join(path, f));
  if (obj['unauthenticated'] !== undefined) peer.unauthenticated = r.boolean(obj['unauthenticated'], join(path, 'unauthenticated'));
  if (peer.unauthenticated === true && (peer.spiffeIds || peer.namespaces || peer.selector)) {
    r.issue('ERR_POLICY_VALUE', join(path, 'unauthenticated'), 'an unauthenticated peer has no SPIFFE ID, namespace or attributes to select on');
  }
  return r.issues.length === before ? peer : undefined;
}

export const OPERATION_FIELDS = ['ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts', 'headers'];

export function readOperation(r: DocReader, value: unknown, path: string): Operation | undefined {
  const obj = r.record(value, path);
  if (!obj) return undefined;
  r.fields(obj, path, OPERATION_FIELDS);
  const before = r.issues.length;
  const op: { -readonly [K in keyof Operation]: Operation[K] } = {};
  if (obj['ports'] !== undefined) op.ports = readPorts(r, obj['ports'], join(path, 'ports'));
  if (obj['notPorts'] !== undefined) op.notPorts = readPorts(r, obj['notPorts'], join(path, 'notPorts'));
  const methodCheck = (s: string): string | undefined => (METHOD_RE.test(s) ? undefined : `not an upper-case HTTP method: ${s}`);
  if (obj['methods'] !== undefined) op.methods = r.strings(obj['methods'], join(path, 'methods'), methodCheck);
  if (obj['notMethods'] !== undefined) op.notMethods = r.strings(obj['notMethods'], join(path, 'notMethods'), methodCheck);
  if (obj['paths'] !== undefined) op.paths = r.strings(obj['paths'], join(path, 'paths'), pathPatternCheck);
  if (obj['notPaths'] !== undefined) op.notPaths = r.strings(obj['notPaths'], join(path, 'notPaths'), pathPatternCheck);
  if (obj['hosts'] !== undefined) op.hosts = r.strings(obj['hosts'], join(path, 'hosts'), patternCheck(true));
  if (obj['notHosts'] !== undefined) op.notHosts = r.strings(obj['notHosts'], join(path, 'notHosts'), patternCheck(true));
  if (obj['headers'] !== undefined) {
    const h = r.record(obj['headers'], join(path, 'headers'));
    if (h) {
      const headers: HeaderMatch[] = [];
      for (const [name, v] of Object.entries(h)) {
        const p = join(join(path, 'headers'), name);
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/.test(name)) r.issue('ERR_POLICY_VALUE', p, 'not a valid header name');
        const values = typeof v === 'string' ? [v] : r.strings(v, p, patternCheck());
        if (values) headers.push({ name: name.toLowerCase(), values });
      }
      op.headers = headers;
    }
  }
  return r.issues.length === before ? op : undefined;
}

export function readCondition(r: DocReader, value: unknown, path: string): Condition | undefined {
  const obj = r.record(value, path);
  if (!obj) return undefined;
  r.fields(obj, path, ['key', 'values', 'notValues']);
  const key = r.string(obj['key'], join(path, 'key'));
  if (key === undefined) return undefined;
  const split = splitConditionKey(key);
  const known = split ? CONDITION_KEYS[split.base] : undefined;
  const named = split?.base === 'request.headers' || split?.base === 'request.auth.claims';
  if (!split || !known || (named ? split.names.length === 0 : split.names.length > 0) || (split.base === 'request.headers' && split.names.length !== 1)) {
    return r.issue('ERR_POLICY_VALUE', join(path, 'key'), `unsupported condition key ${JSON.stringify(key)} (supported: ${Object.keys(CONDITION_KEYS).join(', ')})`);
  }
  if (obj['values'] === undefined && obj['notValues'] === undefined) return r.issue('ERR_POLICY_SCHEMA', path, 'a condition needs values or notValues');
  const check = known.kind === 'ip' ? cidrCheck : known.kind === 'port'
    ? (s: string) => (/^[0-9]{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? undefined : `not a port: ${s}`)
    : known.kind === 'principal' ? patternCheck() : patternCheck();
  const toStrings = (v: unknown, p: string): string[] | undefined => {
    if (Array.isArray(v)) return r.strings(v.map((x) => (typeof x === 'number' ? String(x) : x)), p, check);
    return r.strings(v, p, check);
  };
  const cond: { -readonly [K in keyof Condition]: Condition[K] } = { key: split.base === 'request.headers' ? `request.headers[${split.names[0]!.toLowerCase()}]` : key };
  if (obj['values'] !== undefined) cond.values = toStrings(obj['values'], join(path, 'values'));
  if (obj['notValues'] !== undefined) cond.notValues = toStrings(obj['notValues'], join(path, 'notValues'));
  return cond;
}

