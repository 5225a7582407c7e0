// One contract, every scan-report parser: detection is exclusive and total, parsing is pure
// and fails only with coded ScanErrors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { BUILTIN_SCAN_PARSERS, ScanError, SCAN_ERRORS, type ScanReportParser } from '../../../../src/platforms/scanners/index.js';

const FIXTURES: Record<string, string> = {
  trivy: 'test/fixtures/scans/trivy-orders.json',
  grype: 'test/fixtures/scans/grype-orders.json',
  cyclonedx: 'test/fixtures/scans/cyclonedx-orders.cdx.json',
};
const load = (f: string): unknown => JSON.parse(readFileSync(f, 'utf8'));
const CODES = new Set(Object.keys(SCAN_ERRORS));

function contract(parser: ScanReportParser): void {
  describe(`scan parser contract: ${parser.format}`, () => {
    const fixture = FIXTURES[parser.format];
    assert.ok(fixture, `no fixture for ${parser.format}`);
    const doc = load(fixture);

    test('detects its own format and no other built-in format', () => {
      assert.equal(parser.detect(doc), true);
      for (const [format, file] of Object.entries(FIXTURES)) if (format !== parser.format) assert.equal(parser.detect(load(file)), false, format);
    });

    test('parses its fixture into findings with an image digest, deterministically', () => {
      const a = parser.parse(doc);
      assert.equal(a.format, parser.format);
      assert.ok(a.findings.length > 0);
      assert.deepEqual(a.imageDigests, ['sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5']);
      for (const f of a.findings) {
        assert.match(f.id, /^(CVE|GHSA)-/);
        assert.ok(f.cvss === null || (f.cvss >= 0 && f.cvss <= 10));
      }
      assert.deepEqual(parser.parse(structuredClone(doc)), a);
    });

    test('detect never throws; parse fails only with coded ScanErrors', () => {
      fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        parser.detect(v);
        try {
          parser.parse(v);
        } catch (e) {
          assert.ok(e instanceof ScanError && CODES.has(e.code), String(e));
        }
      }), { numRuns: 300 });
    });

    test('wrong types in the fields it reads are ERR_SCAN_INVALID with a path', () => {
      const broken = JSON.parse(JSON.stringify(doc).replace(/"(VulnerabilityID|id)":"(CVE-2024-2961|CVE-2024-29041)"/, '"$1":42')) as unknown;
      assert.throws(() => parser.parse(broken), (e: unknown) => e instanceof ScanError && e.code === 'ERR_SCAN_INVALID' && typeof e.details?.['path'] === 'string');
    });
  });
}

for (const p of BUILTIN_SCAN_PARSERS) contract(p);
