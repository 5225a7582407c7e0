/**
 * `RegistrationEntry` documents: the server-owned kind that binds a SPIFFE ID to the agents that
 * may mint it (SPIRE's registration model), in the same Kubernetes-style shape as policies.
 *
 * ```yaml
 * apiVersion: ward.dev/v1alpha1
 * kind: RegistrationEntry
 * metadata: { name: orders }
 * spec:
 *   spiffeId: spiffe://example.org/ns/shop/sa/orders
 *   parentId: "*"                          # or one agent's SPIFFE ID
 *   nodeSelectors: [join_token:host-name:vm-12]
 *   selectors: [host:uid:1000]             # matched by the agent against its workload
 *   ttl: 1h
 * ```
 *
 * In the store an entry has one selector list and a SPIFFE ID parent: `*` is stored as the
 * server's own ID (SPIRE's convention for entries matched by node selectors), and node and
 * workload selectors are told apart by their type, the name of the attestor that emits them.
 */
import type { Entry } from '../../api/types.js';
import type { EntryInput, RegistrationEntry } from '../../store/index.js';
import { parseDuration } from '../../core/config.js';
import { tryParseSpiffeId } from '../../core/spiffe-id.js';
import { ServerError } from '../errors.js';

export const ENTRY_KIND = 'RegistrationEntry';
export const ENTRY_API_VERSION = 'ward.dev/v1alpha1';

const NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const SELECTOR_RE = /^[a-z][a-z0-9_]*:[a-z][a-z0-9_-]*:[^\n\r\0]{1,512}$/;

function bad(path: string, message: string): ServerError {
  return new ServerError('ERR_SERVER_BAD_REQUEST', `${path}: ${message}`, { details: { path } });
}

function obj(v: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(path, 'expected an object');
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw bad(`${path}.${k}`, 'unknown field');
  return v as Record<string, unknown>;
}

function selectors(v: unknown, path: string, nodeAttestors: ReadonlySet<string>, wantNode: boolean): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 64) throw bad(path, 'expected a list of at most 64 selectors');
  const out = v.map((s, i) => {
    if (typeof s !== 'string' || !SELECTOR_RE.test(s)) throw bad(`${path}[${i}]`, 'expected <type>:<key>:<value>');
    const isNode = nodeAttestors.has(s.slice(0, s.indexOf(':')));
    if (isNode !== wantNode) throw bad(`${path}[${i}]`, wantNode ? 'node selectors come from node attestors (join_token, k8s_psat, aws_iid)' : 'node attestor selectors belong in nodeSelectors');
    return s;
  });
  return [...new Set(out)].sort();
}

/** Validates a RegistrationEntry document into an entry (without resource version). */
export function parseEntryDocument(doc: unknown, trustDomain: string, nodeAttestors: ReadonlySet<string>, defaultTtlSeconds: number, path = 'document'): Omit<Entry, 'revision'> {
  const d = obj(doc, path, ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  if (d.apiVersion !== ENTRY_API_VERSION) throw bad(`${path}.apiVersion`, `expected ${ENTRY_API_VERSION}`);
  const meta = obj(d.metadata, `${path}.metadata`, ['name', 'labels', 'annotations']);
  if (typeof meta.name !== 'string' || !NAME_RE.test(meta.name)) throw bad(`${path}.metadata.name`, 'expected a DNS-1123 name');
  const spec = obj(d.spec, `${path}.spec`, ['spiffeId', 'parentId', 'nodeSelectors', 'selectors', 'ttl']);
  const id = typeof spec.spiffeId === 'string' ? tryParseSpiffeId(spec.spiffeId) : undefined;
  if (id === undefined) throw bad(`${path}.spec.spiffeId`, 'expected a valid SPIFFE ID');
  if (id.trustDomain !== trustDomain) throw bad(`${path}.spec.spiffeId`, `must be in trust domain ${trustDomain}`);
  if (id.path.startsWith('/ward/')) throw bad(`${path}.spec.spiffeId`, '/ward/ paths are reserved for the server and agents');
  let parentId: string;
  if (spec.parentId === '*') parentId = '*';
  else {
    const p = typeof spec.parentId === 'string' ? tryParseSpiffeId(spec.parentId) : undefined;
    if (p === undefined || p.trustDomain !== trustDomain || !p.path.startsWith('/ward/agent/')) throw bad(`${path}.spec.parentId`, 'expected "*" or an agent SPIFFE ID (spiffe://<td>/ward/agent/...)');
    parentId = p.toString();
  }
  const nodeSelectors = selectors(spec.nodeSelectors, `${path}.spec.nodeSelectors`, nodeAttestors, true);
  const workloadSelectors = selectors(spec.selectors, `${path}.spec.selectors`, nodeAttestors, false);
  if (parentId === '*' && nodeSelectors.length === 0) throw bad(`${path}.spec.nodeSelectors`, 'parentId "*" needs at least one node selector');
  if (nodeSelectors.length + workloadSelectors.length === 0) throw bad(`${path}.spec.selectors`, 'an entry needs at least one selector');
  let ttlSeconds: number | undefined;
  if (spec.ttl !== undefined) {
    if (typeof spec.ttl !== 'string' && typeof spec.ttl !== 'number') throw bad(`${path}.spec.ttl`, 'expected a duration');
    let ms: number;
    try {
      ms = parseDuration(spec.ttl, `${path}.spec.ttl`);
    } catch {
      throw bad(`${path}.spec.ttl`, 'expected a duration like 1h');
    }
    if (ms < 60_000 || ms > 30 * 86_400_000) throw bad(`${path}.spec.ttl`, 'must be between 1m and 30d');
    ttlSeconds = Math.round(ms / 1000);
  }
  return {
    id: meta.name,
    spiffeId: id.toString(),
    parentId,
    nodeSelectors,
    selectors: workloadSelectors,
    ttlSeconds: ttlSeconds ?? defaultTtlSeconds,
  };
}

export function serverParentId(trustDomain: string): string {
  return `spiffe://${trustDomain}/ward/server`;
}

/** The store's form of an entry. */
export function entryToStore(entry: Omit<Entry, 'revision'>, trustDomain: string): EntryInput {
  return {
    id: entry.id,
    spiffeId: entry.spiffeId,
    parentId: entry.parentId === '*' ? serverParentId(trustDomain) : entry.parentId,
    selectors: [...entry.nodeSelectors, ...entry.selectors],
    ttlSeconds: entry.ttlSeconds,
  };
}

/** The API form of a stored entry. */
export function entryFromStore(e: RegistrationEntry, trustDomain: string, nodeAttestors: ReadonlySet<string>): Entry {
  const isNode = (s: string): boolean => nodeAttestors.has(s.slice(0, s.indexOf(':')));
  return {
    id: e.id,
    spiffeId: e.spiffeId,
    parentId: e.parentId === serverParentId(trustDomain) ? '*' : e.parentId,
    nodeSelectors: e.selectors.filter(isNode),
    selectors: e.selectors.filter((s) => !isNode(s)),
    ttlSeconds: e.ttlSeconds,
    revision: e.revision,
  };
}
