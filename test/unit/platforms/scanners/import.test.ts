import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  importScanReport, ScanError, ScanParserRegistry, trivyParser, summarizeFindings, MAX_LISTED_CVES,
  type Finding,
} from '../../../../src/platforms/scanners/index.js';

const DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
const read = (name: string) => readFileSync(`test/fixtures/scans/${name}`, 'utf8');
const AT = Date.parse('2026-03-01T12:00:00Z');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ScanError, String(e));
    return e.code;
  }
  assert.fail('expected a ScanError');
}

function values(attrs: Record<string, { value: unknown }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value]));
}

test('trivy: counts unique vulnerabilities at their severity, fixable, max CVSS, CVE list', () => {
  const scan = importScanReport(read('trivy-orders.json'), { observedAt: AT });
  assert.equal(scan.format, 'trivy');
  assert.deepEqual(scan.imageDigests, [DIGEST]);
  assert.deepEqual(values(scan.attributes), {
    'vuln.critical': 1,
    'vuln.high': 3, // CVE-2024-2961 (libc6 and libc-bin: once), CVE-2023-52425, CVE-2022-25883
    'vuln.medium': 2,
    'vuln.maxCvss': 9.8,
    'vuln.fixable': 4,
    'vuln.cves': ['CVE-2011-3374', 'CVE-2022-25883', 'CVE-2023-45853', 'CVE-2023-52425', 'CVE-2024-28182', 'CVE-2024-29041', 'CVE-2024-2961'],
  });
  for (const a of Object.values(scan.attributes)) {
    assert.equal(a.source, 'scan:trivy');
    assert.equal(a.observedAt, AT);
  }
  assert.equal(scan.summary.low, 1);
});

test('grype: GHSA matches count under their CVE; negligible is not medium', () => {
  const scan = importScanReport(read('grype-orders.json'), { observedAt: AT });
  assert.equal(scan.format, 'grype');
  assert.deepEqual(values(scan.attributes), {
    'vuln.critical': 1,
    'vuln.high': 2,
    'vuln.medium': 1,
    'vuln.maxCvss': 9.8,
    'vuln.fixable': 3,
    'vuln.cves': ['CVE-2011-3374', 'CVE-2022-25883', 'CVE-2023-45853', 'CVE-2024-28182', 'CVE-2024-2961'],
  });
});

test('VEX not_affected suppresses matching findings; a statement limited to another package does not', () => {
  const scan = importScanReport(read('trivy-orders.json'), { observedAt: AT, vex: [read('vex-orders.cdx.json')] });
  const v = values(scan.attributes);
  assert.equal(v['vuln.critical'], 0);
  assert.equal(v['vuln.high'], 3, 'CVE-2023-52425 statement names libxml2, not libexpat1');
  assert.equal(v['vuln.maxCvss'], 7.5);
  assert.ok(!(v['vuln.cves'] as string[]).includes('CVE-2023-45853'));
  assert.deepEqual(scan.summary.suppressed, ['CVE-2023-45853']);
  // Grype too; and the in_triage statement for CVE-2011-3374 changes nothing.
  const g = importScanReport(read('grype-orders.json'), { observedAt: AT, vex: [read('vex-orders.cdx.json')] });
  assert.equal(values(g.attributes)['vuln.critical'], 0);
  assert.ok((values(g.attributes)['vuln.cves'] as string[]).includes('CVE-2011-3374'));
});

test('VEX naming another image does not apply', () => {
  const other = read('vex-orders.cdx.json').replaceAll('7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5', 'aa'.repeat(32));
  const scan = importScanReport(read('trivy-orders.json'), { observedAt: AT, vex: [other] });
  assert.equal(values(scan.attributes)['vuln.critical'], 1);
});

test('cyclonedx report: ratings, recommendations, in-document false_positive', () => {
  const scan = importScanReport(read('cyclonedx-orders.cdx.json'), { observedAt: AT });
  assert.equal(scan.format, 'cyclonedx');
  assert.deepEqual(scan.imageDigests, [DIGEST]);
  assert.deepEqual(values(scan.attributes), {
    'vuln.critical': 1, 'vuln.high': 0, 'vuln.medium': 1, 'vuln.maxCvss': 9.8, 'vuln.fixable': 1, 'vuln.cves': ['CVE-2023-45853', 'CVE-2024-29041'],
  });
  assert.deepEqual(scan.summary.suppressed, ['CVE-2023-52425']);
});

test('image digest: override must agree with the report; none at all is ERR_SCAN_NO_DIGEST', () => {
  assert.deepEqual(importScanReport(read('trivy-orders.json'), { observedAt: AT, imageDigest: DIGEST.toUpperCase().replace('SHA256', 'sha256') }).imageDigests, [DIGEST]);
  assert.equal(code(() => importScanReport(read('trivy-orders.json'), { observedAt: AT, imageDigest: `sha256:${'00'.repeat(32)}` })), 'ERR_SCAN_INVALID');
  assert.equal(code(() => importScanReport(read('trivy-orders.json'), { observedAt: AT, imageDigest: 'latest' })), 'ERR_SCAN_INVALID');
  const fsScan = JSON.parse(read('trivy-orders.json')) as Record<string, unknown>;
  fsScan['ArtifactType'] = 'filesystem';
  delete fsScan['Metadata'];
  assert.equal(code(() => importScanReport(JSON.stringify(fsScan), { observedAt: AT })), 'ERR_SCAN_NO_DIGEST');
  assert.deepEqual(importScanReport(JSON.stringify(fsScan), { observedAt: AT, imageDigest: DIGEST }).imageDigests, [DIGEST]);
});

test('format: detection, forcing, unknown formats, JSON and size limits', () => {
  assert.equal(code(() => importScanReport('{"hello":"world"}', { observedAt: AT })), 'ERR_SCAN_FORMAT_UNKNOWN');
  assert.equal(code(() => importScanReport(read('trivy-orders.json'), { observedAt: AT, format: 'grype' })), 'ERR_SCAN_FORMAT_UNKNOWN');
  assert.equal(code(() => importScanReport(read('trivy-orders.json'), { observedAt: AT, format: 'snyk' })), 'ERR_SCAN_FORMAT_UNKNOWN');
  assert.equal(code(() => importScanReport('{"SchemaVersion":1,"Results":[]}', { observedAt: AT })), 'ERR_SCAN_INVALID');
  assert.equal(code(() => importScanReport('{not json', { observedAt: AT })), 'ERR_SCAN_JSON');
  assert.equal(code(() => importScanReport(new Uint8Array([0xff, 0xfe, 0x7b]), { observedAt: AT })), 'ERR_SCAN_JSON');
  assert.equal(code(() => importScanReport(read('trivy-orders.json'), { observedAt: AT, maxBytes: 1000 })), 'ERR_SCAN_TOO_LARGE');
  assert.equal(code(() => importScanReport(read('trivy-orders.json'), { observedAt: AT, vex: [read('trivy-orders.json')] })), 'ERR_SCAN_FORMAT_UNKNOWN');
  assert.equal(importScanReport(new TextEncoder().encode(read('grype-orders.json')), { observedAt: AT }).format, 'grype');
});

test('registry: plug-ins register once, ambiguity is refused', () => {
  const r = new ScanParserRegistry();
  assert.deepEqual(r.formats(), ['trivy', 'grype', 'cyclonedx']);
  assert.throws(() => r.register(trivyParser), /twice/);
  r.register({ ...trivyParser, format: 'trivy-fork' });
  assert.equal(code(() => r.detect(JSON.parse(read('trivy-orders.json')))), 'ERR_SCAN_FORMAT_UNKNOWN');
  assert.equal(importScanReport(read('trivy-orders.json'), { observedAt: AT, registry: r, format: 'trivy-fork' }).format, 'trivy');
});

test('summarizeFindings bounds the CVE list but keeps exact counts', () => {
  const many: Finding[] = Array.from({ length: MAX_LISTED_CVES + 50 }, (_, i) => ({ id: `CVE-2025-${10000 + i}`, aliases: [], severity: 'high', cvss: null, fixable: false, package: null }));
  const s = summarizeFindings(many);
  assert.equal(s.high, MAX_LISTED_CVES + 50);
  assert.equal(s.cves.length, MAX_LISTED_CVES);
  assert.equal(s.maxCvss, 0);
});
