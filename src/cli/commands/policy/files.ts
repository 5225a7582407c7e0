/**
 * Reading policy files for the offline commands: a file, or every `.yaml`/`.yml`/`.json` under a
 * directory (sorted, bounded), parsed with the policy layer's limits.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parsePolicySources, type ParsedDocuments, type PolicySource } from '../../../policy/index.js';
import { PolicyError } from '../../../policy/errors.js';

const MAX_FILES = 10_000;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Every policy file at `path` (the file itself, or the YAML/JSON files under the directory). */
export function collectFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new PolicyError('ERR_POLICY_YAML', `cannot read ${path}: no such file or directory`, { details: { file: path } });
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 16) return;
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const p = join(dir, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p, depth + 1);
      else if (/\.(ya?ml|json)$/i.test(name)) {
        out.push(p);
        if (out.length > MAX_FILES) throw new PolicyError('ERR_POLICY_YAML', `more than ${MAX_FILES} files under ${path}`);
      }
    }
  };
  walk(path, 0);
  return out;
}

export function readSources(paths: readonly string[]): PolicySource[] {
  const sources: PolicySource[] = [];
  for (const p of paths) {
    for (const file of collectFiles(p)) {
      const size = statSync(file).size;
      if (size > MAX_FILE_BYTES) throw new PolicyError('ERR_POLICY_YAML', `${file} is larger than ${MAX_FILE_BYTES} bytes`, { details: { file } });
      sources.push({ file, text: readFileSync(file, 'utf8') });
    }
  }
  return sources;
}

/** Parses every file under the given paths as one unit (cross-document checks included). */
export function loadPolicyPaths(paths: readonly string[], now: number): ParsedDocuments {
  return parsePolicySources(readSources(paths), { now });
}

/** Resolves a reference written inside `fromFile` relative to that file's directory. */
export function resolveRef(ref: string, fromFile: string | undefined): string {
  if (isAbsolute(ref) || fromFile === undefined) return resolve(ref);
  return resolve(dirname(fromFile), ref);
}
