/**
 * `npm run bench [subject ...]`: runs each subject's benchmark in its own process, one after the
 * other (never in parallel: they measure the machine). A subject is a folder under bench/; its
 * entry point is `run.ts` if present, else every `*.bench.ts` in it. Each benchmark prints its
 * figures as ratios to a baseline it measures in the same run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const subjects = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : readdirSync(here).filter((n) => statSync(join(here, n)).isDirectory() && n !== 'results').sort();

let failed = 0;
for (const subject of subjects) {
  const dir = join(here, subject);
  if (!existsSync(dir)) {
    console.error(`bench: no subject ${subject} (folders: ${readdirSync(here).join(', ')})`);
    process.exitCode = 2;
    continue;
  }
  const entries = existsSync(join(dir, 'run.ts'))
    ? ['run.ts']
    : readdirSync(dir).filter((n) => n.endsWith('.bench.ts')).sort();
  for (const entry of entries) {
    console.log(`\n=== bench/${subject}/${entry} ===`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, entry)], { stdio: 'inherit' });
    if (r.status !== 0) failed += 1;
  }
}
if (failed > 0) process.exitCode = 1;
