// Child process for sqlite-multiprocess.test.ts: one more Ward process on the same SQLite file.
// argv: <db path> <token> <n policies> <tag> <clock ms>
import { createHash } from 'node:crypto';
import { ManualClock } from '../../../src/core/clock.js';
import { openStore } from '../../../src/store/index.js';

const [path, token, n, tag, now] = process.argv.slice(2) as [string, string, string, string, string];
const store = await openStore(`sqlite://${path}`, { clock: new ManualClock(Number(now)) });
const won = await store.joinTokens.consume(token, tag);
const keyHash = createHash('sha256').update(token).digest('hex');
const redeemed = await store.attestation.redeemCredential('join_token', keyHash, Number(now));
const consumed = await store.attestation.consumeOnce('aws_iid', `i-${token.slice(0, 8)}`, Number(now) + 60_000);
const job = await store.singleton('prune', 60_000, async () => tag);
for (let i = 0; i < Number(n); i++) await store.policies.put({ name: `${tag}-${i}`, yaml: '', parsed: { i } });
await store.close();
process.stdout.write(JSON.stringify({ won: won !== null, redeemed: redeemed.outcome, consumed, ran: job.ran }));
