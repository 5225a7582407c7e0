#!/usr/bin/env node
// Runs the test suite with Node's own test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [path-or-dir ...]   (default: test/)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test'];
const files = [];
const walk = (p) => {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const entry of readdirSync(p).sort()) if (entry !== 'node_modules' && entry !== 'fixtures') walk(join(p, entry));
  } else if (/\.test\.ts$/.test(p)) files.push(relative(process.cwd(), p));
};
for (const root of roots) walk(root);
if (files.length === 0) {
  console.error(`no test files under ${roots.join(' ')}`);
  process.exit(1);
}
const args = [
  '--import', 'tsx',
  '--import', './test/setup.ts',
  '--test',
  `--test-concurrency=${process.env.WARD_TEST_CONCURRENCY ?? '2'}`,
  '--test-reporter=spec',
  ...files,
];
const result = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, WARD_TEST: '1' } });
process.exit(result.status ?? 1);
