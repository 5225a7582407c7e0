// Every error code declared in a src/**/errors.ts is documented in docs/reference/errors.md,
// and every documented code exists: code and docs list the same set (as fastify does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ERROR_CODE_TABLE } from '../../../src/core/errors.js';

function errorFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...errorFiles(p));
    else if (name === 'errors.ts') out.push(p);
  }
  return out;
}

test('every declared error code is documented once, and every documented code is declared', async () => {
  const declared = new Map<string, string>();
  for (const file of errorFiles('src')) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (value && typeof value === 'object' && ERROR_CODE_TABLE in value) {
        for (const code of Object.keys(value)) {
          assert.ok(!declared.has(code) || declared.get(code) === file, `${code} declared twice (${declared.get(code)} and ${file})`);
          declared.set(code, file);
        }
      }
    }
  }
  assert.ok(declared.size > 0);
  const docs = readFileSync('docs/reference/errors.md', 'utf8');
  const documented = new Set<string>();
  for (const line of docs.split('\n')) {
    const m = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|/.exec(line);
    if (m) {
      assert.ok(!documented.has(m[1]!), `${m[1]} documented twice`);
      documented.add(m[1]!);
    }
  }
  const missingInDocs = [...declared.keys()].filter((c) => !documented.has(c)).sort();
  const missingInCode = [...documented].filter((c) => !declared.has(c)).sort();
  assert.deepEqual(missingInDocs, [], 'codes declared but not documented in docs/reference/errors.md');
  assert.deepEqual(missingInCode, [], 'codes documented but declared nowhere');
});
