// Fuzz: mutated real reports and random input never crash importScanReport; failures are coded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { importScanReport, ScanError, SCAN_ERRORS } from '../../src/platforms/scanners/index.js';

const CODES = new Set(Object.keys(SCAN_ERRORS));
const FILES = ['trivy-orders.json', 'grype-orders.json', 'cyclonedx-orders.cdx.json', 'vex-orders.cdx.json'].map((f) => readFileSync(`test/fixtures/scans/${f}`, 'utf8'));

function check(fn: () => unknown): void {
  try {
    const r = fn() as { attributes: Record<string, { value: unknown }> };
    for (const k of ['vuln.critical', 'vuln.high', 'vuln.medium', 'vuln.fixable']) {
      const v = r.attributes[k]?.value;
      assert.ok(Number.isSafeInteger(v) && (v as number) >= 0, `${k}=${String(v)}`);
    }
    const max = r.attributes['vuln.maxCvss']?.value as number;
    assert.ok(max >= 0 && max <= 10);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof ScanError && CODES.has(e.code), `uncoded failure: ${String(e)}`);
  }
}

const opts = { observedAt: 0, imageDigest: undefined };

test('random bytes and JSON', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 500 }), (b) => check(() => importScanReport(b, opts))), { numRuns: 200 });
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => check(() => importScanReport(JSON.stringify(v), opts))), { numRuns: 300 });
});

test('structural mutations of real reports: any node replaced by random JSON', () => {
  const docs = FILES.map((f) => JSON.parse(f) as unknown);
  const paths: Array<[number, (string | number)[]]> = [];
  const walk = (i: number, v: unknown, p: (string | number)[]): void => {
    paths.push([i, p]);
    if (Array.isArray(v)) v.forEach((c, k) => walk(i, c, [...p, k]));
    else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(i, c, [...p, k]);
  };
  docs.forEach((d, i) => walk(i, d, []));
  fc.assert(fc.property(fc.nat(paths.length - 1), fc.jsonValue({ maxDepth: 3 }), (pi, value) => {
    const [i, path] = paths[pi]!;
    if (path.length === 0) return check(() => importScanReport(JSON.stringify(value), opts));
    const doc = structuredClone(docs[i]) as Record<string | number, unknown>;
    let cur = doc;
    for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
    cur[path.at(-1)!] = value;
    check(() => importScanReport(JSON.stringify(doc), opts));
    check(() => importScanReport(FILES[0]!, { observedAt: 0, vex: [JSON.stringify(doc)] }));
  }), { numRuns: 600 });
});

test('byte mutations of real reports', () => {
  fc.assert(fc.property(fc.nat(FILES.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (fi, muts) => {
    const bytes = new TextEncoder().encode(FILES[fi]!);
    for (const [pos, val] of muts) bytes[pos % bytes.length] = val;
    check(() => importScanReport(bytes, opts));
  }), { numRuns: 300 });
});
