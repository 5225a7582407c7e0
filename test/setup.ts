// Loaded before every test file (scripts/run-tests.mjs). Property and fuzz tests run with a
// fixed seed in `npm test` so CI is reproducible; `npm run fuzz` (WARD_FUZZ_SEED=random) explores
// new inputs with more runs and prints the seed so any finding can be replayed.
import fc from 'fast-check';

const raw = process.env.WARD_FUZZ_SEED;
const seed = raw === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(raw ?? 20261124);
const numRuns = process.env.WARD_FUZZ_RUNS === undefined ? undefined : Number(process.env.WARD_FUZZ_RUNS);
if (raw === 'random') process.stderr.write(`fast-check seed ${seed} (replay with WARD_FUZZ_SEED=${seed})\n`);
fc.configureGlobal({ seed, ...(numRuns === undefined ? {} : { numRuns }) });
