/**
 * Trivy JSON (`trivy image -f json`, SchemaVersion 2). Image digests come from
 * `Metadata.RepoDigests` (`repo@sha256:…`, the manifest digest Kubernetes reports as imageID).
 * Fixable: a non-empty `FixedVersion`. CVSS: the highest V3/V4.0 (else V2) score of any vendor.
 * `Status: not_affected` findings (a VEX applied by Trivy itself) become suppressions.
 */
import type { Finding, ParsedReport, ScanReportParser, Severity, Suppression } from '../parser.js';
import { cvssScore, digestOf, invalid, isObject, list, obj, optObj, optStr, str, vulnId } from '../read.js';

const SEVERITIES: Readonly<Record<string, Severity>> = { CRITICAL: 'critical', HIGH: 'high', MEDIUM: 'medium', LOW: 'low', UNKNOWN: 'unknown' };

function maxCvss(v: unknown, path: string): number | null {
  const cvss = optObj(v, path);
  if (!cvss) return null;
  let best: number | null = null;
  let bestV2: number | null = null;
  for (const [vendor, entry] of Object.entries(cvss)) {
    const e = obj(entry, `${path}.${vendor}`);
    for (const key of ['V3Score', 'V40Score']) {
      const s = cvssScore(e[key], `${path}.${vendor}.${key}`);
      if (s !== undefined && (best === null || s > best)) best = s;
    }
    const s2 = cvssScore(e['V2Score'], `${path}.${vendor}.V2Score`);
    if (s2 !== undefined && (bestV2 === null || s2 > bestV2)) bestV2 = s2;
  }
  return best ?? bestV2;
}

export const trivyParser: ScanReportParser = {
  format: 'trivy',

  detect(doc) {
    return isObject(doc) && 'SchemaVersion' in doc && ('Results' in doc || 'ArtifactName' in doc);
  },

  parse(doc): ParsedReport {
    const root = obj(doc, '$');
    if (root['SchemaVersion'] !== 2) throw invalid('$.SchemaVersion', 'only Trivy JSON SchemaVersion 2 is supported');
    const meta = optObj(root['Metadata'], '$.Metadata');
    const digests = new Set<string>();
    for (const [i, ref] of list(meta?.['RepoDigests'], '$.Metadata.RepoDigests', 256).entries()) {
      const d = digestOf(str(ref, `$.Metadata.RepoDigests[${i}]`, 1024));
      if (d) digests.add(d);
    }
    const findings: Finding[] = [];
    const suppressions: Suppression[] = [];
    for (const [ri, r] of list(root['Results'], '$.Results', 10_000).entries()) {
      const result = obj(r, `$.Results[${ri}]`);
      for (const [vi, v] of list(result['Vulnerabilities'], `$.Results[${ri}].Vulnerabilities`).entries()) {
        const path = `$.Results[${ri}].Vulnerabilities[${vi}]`;
        const vuln = obj(v, path);
        const id = vulnId(vuln['VulnerabilityID'], `${path}.VulnerabilityID`);
        const sevText = str(vuln['Severity'] ?? 'UNKNOWN', `${path}.Severity`, 16);
        const severity = SEVERITIES[sevText];
        if (severity === undefined) throw invalid(`${path}.Severity`, 'expected CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN');
        const name = str(vuln['PkgName'] ?? '', `${path}.PkgName`, 512);
        const status = optStr(vuln['Status'], `${path}.Status`, 64);
        if (status === 'not_affected') {
          suppressions.push({ id, state: 'not_affected', packages: name ? [name] : [] });
          continue;
        }
        const fixed = optStr(vuln['FixedVersion'], `${path}.FixedVersion`, 1024);
        const identifier = optObj(vuln['PkgIdentifier'], `${path}.PkgIdentifier`);
        const purl = optStr(identifier?.['PURL'], `${path}.PkgIdentifier.PURL`, 2048);
        findings.push({
          id,
          aliases: [],
          severity,
          cvss: maxCvss(vuln['CVSS'], `${path}.CVSS`),
          fixable: fixed !== undefined && fixed.trim() !== '',
          package: name ? { name, version: str(vuln['InstalledVersion'] ?? '', `${path}.InstalledVersion`, 512), ...(purl ? { purl } : {}) } : null,
        });
      }
    }
    return { format: 'trivy', imageDigests: [...digests].sort(), findings, suppressions, tool: { name: 'trivy' } };
  },
};
