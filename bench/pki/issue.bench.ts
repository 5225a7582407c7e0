/**
 * bench/pki: X.509-SVID issuance (CSR check + sign + encode) per second, printed as a ratio to
 * raw ECDSA P-256 signatures per second measured in the same process, side by side (alternating
 * slices, so both see the same load); and chain verification as a ratio to raw ECDSA
 * verifications. Three rounds; medians printed.
 *
 *   node --import tsx bench/pki/issue.bench.ts [--seconds 1.5]
 *
 * Target (issue 2): issuance >= 10% of the raw signing rate, and 100,000 re-issues < 20 s.
 */
import { randomBytes, sign, verify } from 'node:crypto';
import { ManualClock } from '../../src/core/clock.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { createSvidCsr } from '../../src/pki/csr.js';
import { KeySealer } from '../../src/pki/envelope.js';
import { generateP256KeyPair } from '../../src/pki/keys.js';
import { issueX509Svid } from '../../src/pki/svid-issue.js';
import { verifyX509Svid } from '../../src/pki/svid-verify.js';

const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 1.5;

/**
 * Measures two operations side by side: alternating short slices of each so both see the same
 * machine load (the machine is shared), then ops/s of each over its own slices.
 */
function sideBySide(a: (i: number) => void, b: (i: number) => void): [number, number] {
  for (let i = 0; i < 50; i++) {
    a(i);
    b(i);
  }
  const slices = 10;
  const sliceMs = (SECONDS * 1000) / slices;
  const ops = [0, 0];
  const time = [0, 0];
  for (let s = 0; s < slices; s++) {
    for (const [k, fn] of [[0, a], [1, b]] as const) {
      const start = performance.now();
      const end = start + sliceMs;
      let n = 0;
      while (performance.now() < end) for (let j = 0; j < 10; j++) fn(n++);
      ops[k]! += n;
      time[k]! += performance.now() - start;
    }
  }
  return [ops[0]! / (time[0]! / 1000), ops[1]! / (time[1]! / 1000)];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const clock = new ManualClock('2026-06-01T00:00:00Z');
const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
const POOL = 256;
const csrs = Array.from({ length: POOL }, (_, i) => {
  const spiffeId = `spiffe://example.org/ns/bench/sa/workload-${i}`;
  return { spiffeId, der: createSvidCsr({ spiffeId, privateKey: generateP256KeyPair().privateKey }).der };
});
const signer = ca.x509Signer(clock);
const tbsLike = randomBytes(420); // about the size of a leaf's TBSCertificate
const rawSig = sign('sha256', tbsLike, signer.key);
const bundle = ca.trustBundle();
const chains = csrs.slice(0, 64).map((c) => issueX509Svid({ ca, csr: c.der, spiffeId: c.spiffeId, clock }).chainDer);

const rounds: { rawSign: number; issue: number; rawVerify: number; verify: number }[] = [];
for (let r = 0; r < 3; r++) {
  const [rawSign, issue] = sideBySide(() => void sign('sha256', tbsLike, signer.key), (i) => {
    const c = csrs[i % POOL]!;
    issueX509Svid({ ca, csr: c.der, spiffeId: c.spiffeId, clock });
  });
  const [rawVerify, verifyRate] = sideBySide(() => void verify('sha256', tbsLike, signer.key, rawSig), (i) => void verifyX509Svid(chains[i % chains.length]!, bundle, { at: clock.now() }));
  rounds.push({ rawSign, issue, rawVerify, verify: verifyRate });
  console.log(`round ${r + 1}: raw sign ${rawSign.toFixed(0)}/s, issue ${issue.toFixed(0)}/s (${((issue / rawSign) * 100).toFixed(1)}%); raw verify ${rawVerify.toFixed(0)}/s, chain verify ${verifyRate.toFixed(0)}/s (${((verifyRate / rawVerify) * 100).toFixed(1)}%)`);
}
const issueRatio = median(rounds.map((x) => x.issue / x.rawSign));
const verifyRatio = median(rounds.map((x) => x.verify / x.rawVerify));
const issueRate = median(rounds.map((x) => x.issue));
console.log(`median: issuance = ${(issueRatio * 100).toFixed(1)}% of raw ECDSA P-256 sign/s (target >= 10%); chain verification = ${(verifyRatio * 100).toFixed(1)}% of raw ECDSA verify/s`);
console.log(`median: 100,000 re-issues after a rotation ~ ${(100_000 / issueRate).toFixed(1)} s on one core (target < 20 s)`);
process.exitCode = issueRatio >= 0.1 ? 0 : 1;
