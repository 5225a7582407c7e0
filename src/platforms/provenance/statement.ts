/**
 * in-toto Statements (v0.1 and v1) carrying SLSA provenance (v0.2 and v1), read tolerantly:
 * real files drift (`internalParameters` was `systemParameters` in v1 drafts; builders put the
 * source in `externalParameters.workflow`, `externalParameters.source`, `resolvedDependencies`,
 * `invocation.configSource` or `materials`). What Ward extracts: subject digests, repository,
 * commit and builder id.
 */
import { ProvenanceError } from './errors.js';

export const STATEMENT_TYPES = Object.freeze(['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']);
export const SLSA_V1 = 'https://slsa.dev/provenance/v1';
export const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';

export interface BuildFacts {
  readonly statementType: string;
  readonly predicateType: string;
  /** `sha256:<hex>` (and `sha512:`) digests of the subjects. */
  readonly subjectDigests: readonly string[];
  readonly builder: string;
  readonly repo: string | null;
  readonly commit: string | null;
  readonly buildType: string | null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stmtError(path: string, message: string): ProvenanceError {
  return new ProvenanceError('ERR_PROVENANCE_STATEMENT', `${path}: ${message}`, { details: { path } });
}

function predError(path: string, message: string): ProvenanceError {
  return new ProvenanceError('ERR_PROVENANCE_PREDICATE', `${path}: ${message}`, { details: { path } });
}

function optObj(v: unknown): Json | undefined {
  return isObject(v) ? v : undefined;
}

function optStr(v: unknown, max = 2048): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined;
}

const HEX_COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** `git+https://github.com/acme/orders@refs/heads/main` → `https://github.com/acme/orders`. */
export function normalizeRepo(uri: string): string {
  const u = uri.startsWith('git+') ? uri.slice(4) : uri;
  const scheme = u.indexOf('://');
  if (scheme < 0) return u.split('@')[0]!.replace(/\.git$/, '');
  const rest = u.slice(scheme + 3);
  const slash = rest.indexOf('/');
  let host = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash).split('@')[0]!;
  host = host.slice(host.lastIndexOf('@') + 1); // drop userinfo (git@host)
  return `${u.slice(0, scheme + 3)}${host}${path}`.replace(/\.git$/, '');
}

function commitOf(digest: unknown): string | null {
  const d = optObj(digest);
  if (!d) return null;
  for (const k of ['gitCommit', 'sha1', 'sha256']) {
    const v = optStr(d[k], 64)?.toLowerCase();
    if (v && HEX_COMMIT.test(v)) return v;
  }
  return null;
}

function readSubjects(stmt: Json): string[] {
  const subjects = stmt['subject'];
  if (!Array.isArray(subjects) || subjects.length === 0) throw stmtError('$.subject', 'expected at least one subject');
  if (subjects.length > 1024) throw stmtError('$.subject', 'more than 1024 subjects');
  const out = new Set<string>();
  subjects.forEach((s, i) => {
    const digest = optObj(optObj(s)?.['digest']);
    if (!digest) throw stmtError(`$.subject[${i}].digest`, 'expected a digest set');
    for (const [alg, len] of [['sha256', 64], ['sha512', 128]] as const) {
      const v = digest[alg];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !new RegExp(`^[0-9a-fA-F]{${len}}$`).test(v)) throw stmtError(`$.subject[${i}].digest.${alg}`, `expected ${len} hex characters`);
      out.add(`${alg}:${v.toLowerCase()}`);
    }
  });
  if (![...out].some((d) => d.startsWith('sha256:'))) throw stmtError('$.subject', 'no subject has a sha256 digest');
  return [...out].sort();
}

function fromV1(pred: Json): Pick<BuildFacts, 'builder' | 'repo' | 'commit' | 'buildType'> {
  const def = optObj(pred['buildDefinition']);
  if (!def) throw predError('$.predicate.buildDefinition', 'expected an object');
  const run = optObj(pred['runDetails']);
  const builder = optStr(optObj(run?.['builder'])?.['id']);
  if (!builder) throw predError('$.predicate.runDetails.builder.id', 'expected the builder id');
  const ext = optObj(def['externalParameters']) ?? {};
  // internalParameters (v1.0) was systemParameters in the v1 release candidates.
  const internal = optObj(def['internalParameters']) ?? optObj(def['systemParameters']) ?? {};
  const deps = Array.isArray(def['resolvedDependencies']) ? def['resolvedDependencies'].filter(isObject) : [];
  const workflow = optObj(ext['workflow']);
  let repo = optStr(workflow?.['repository']) ?? optStr(optObj(ext['source'])?.['uri']) ?? optStr(ext['source']) ?? optStr(ext['repository']) ?? null;
  const gitDeps = deps.filter((d) => typeof d['uri'] === 'string' && /^git\+|\.git(@|$)|^https:\/\/github\.com\//.test(d['uri'] as string));
  let commit: string | null = null;
  const matching = repo ? gitDeps.find((d) => normalizeRepo(d['uri'] as string) === normalizeRepo(repo as string)) : gitDeps[0];
  if (matching) {
    repo ??= matching['uri'] as string;
    commit = commitOf(matching['digest']);
  }
  commit ??= commitOf(optObj(ext['source'])?.['digest']);
  commit ??= optStr(optObj(internal['github'])?.['sha'], 64)?.toLowerCase() ?? null;
  if (commit !== null && !HEX_COMMIT.test(commit)) commit = null;
  return { builder, repo: repo ? normalizeRepo(repo) : null, commit, buildType: optStr(def['buildType']) ?? null };
}

function fromV02(pred: Json): Pick<BuildFacts, 'builder' | 'repo' | 'commit' | 'buildType'> {
  const builder = optStr(optObj(pred['builder'])?.['id']);
  if (!builder) throw predError('$.predicate.builder.id', 'expected the builder id');
  const config = optObj(optObj(pred['invocation'])?.['configSource']);
  const materials = Array.isArray(pred['materials']) ? pred['materials'].filter(isObject) : [];
  let repo = optStr(config?.['uri']) ?? null;
  let commit = commitOf(config?.['digest']);
  if (!repo || !commit) {
    const m = repo ? materials.find((x) => typeof x['uri'] === 'string' && normalizeRepo(x['uri'] as string) === normalizeRepo(repo as string)) : materials.find((x) => typeof x['uri'] === 'string' && (x['uri'] as string).startsWith('git+'));
    if (m) {
      repo ??= m['uri'] as string;
      commit ??= commitOf(m['digest']);
    }
  }
  return { builder, repo: repo ? normalizeRepo(repo) : null, commit, buildType: optStr(pred['buildType']) ?? null };
}

/** Reads the build facts from a Statement payload (already signature-checked). */
export function readStatement(payload: Uint8Array): BuildFacts {
  let stmt: unknown;
  try {
    stmt = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (cause) {
    throw new ProvenanceError('ERR_PROVENANCE_STATEMENT', '$: payload is not UTF-8 JSON', { cause, details: { path: '$' } });
  }
  if (!isObject(stmt)) throw stmtError('$', 'expected an object');
  const type = stmt['_type'];
  if (typeof type !== 'string' || !STATEMENT_TYPES.includes(type)) throw stmtError('$._type', 'expected an in-toto Statement v0.1 or v1');
  const subjectDigests = readSubjects(stmt);
  const predicateType = stmt['predicateType'];
  const pred = optObj(stmt['predicate']);
  if (!pred) throw predError('$.predicate', 'expected an object');
  let facts: Pick<BuildFacts, 'builder' | 'repo' | 'commit' | 'buildType'>;
  if (predicateType === SLSA_V1) facts = fromV1(pred);
  else if (predicateType === SLSA_V02) facts = fromV02(pred);
  else throw predError('$.predicateType', 'expected SLSA provenance v0.2 or v1');
  return { statementType: type, predicateType, subjectDigests, ...facts };
}
