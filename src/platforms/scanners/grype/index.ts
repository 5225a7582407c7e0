/**
 * Grype JSON (`grype <image> -o json`). Image digests: `source.target.repoDigests` and
 * `source.target.manifestDigest` when `source.type` is `image`. Fixable: `fix.state` is `fixed`
 * with at least one version. CVSS: highest `cvss[].metrics.baseScore` of the vulnerability and
 * its related vulnerabilities (whose ids become aliases, so a GHSA match counts its CVE).
 */
import type { Finding, ParsedReport, ScanReportParser, Severity } from '../parser.js';
import { cvssScore, digestOf, invalid, isObject, list, obj, optObj, optStr, str, vulnId } from '../read.js';

const SEVERITIES: Readonly<Record<string, Severity>> = {
  Critical: 'critical', High: 'high', Medium: 'medium', Low: 'low', Negligible: 'negligible', Unknown: 'unknown',
};

function maxCvss(v: unknown, path: string, current: number | null): number | null {
  let best = current;
  for (const [i, c] of list(v, path, 64).entries()) {
    const metrics = optObj(obj(c, `${path}[${i}]`)['metrics'], `${path}[${i}].metrics`);
    const s = cvssScore(metrics?.['baseScore'], `${path}[${i}].metrics.baseScore`);
    if (s !== undefined && (best === null || s > best)) best = s;
  }
  return best;
}

export const grypeParser: ScanReportParser = {
  format: 'grype',

  detect(doc) {
    return isObject(doc) && Array.isArray(doc['matches']) && (isObject(doc['descriptor']) || isObject(doc['source']));
  },

  parse(doc): ParsedReport {
    const root = obj(doc, '$');
    const digests = new Set<string>();
    const source = optObj(root['source'], '$.source');
    if (source?.['type'] === 'image') {
      const target = obj(source['target'], '$.source.target');
      for (const [i, ref] of list(target['repoDigests'], '$.source.target.repoDigests', 256).entries()) {
        const d = digestOf(str(ref, `$.source.target.repoDigests[${i}]`, 1024));
        if (d) digests.add(d);
      }
      const manifest = optStr(target['manifestDigest'], '$.source.target.manifestDigest', 256);
      const d = manifest ? digestOf(manifest) : null;
      if (d) digests.add(d);
    }
    const findings: Finding[] = [];
    for (const [mi, m] of list(root['matches'], '$.matches').entries()) {
      const path = `$.matches[${mi}]`;
      const match = obj(m, path);
      const vuln = obj(match['vulnerability'], `${path}.vulnerability`);
      const id = vulnId(vuln['id'], `${path}.vulnerability.id`);
      const sevText = str(vuln['severity'] ?? 'Unknown', `${path}.vulnerability.severity`, 16);
      const severity = SEVERITIES[sevText];
      if (severity === undefined) throw invalid(`${path}.vulnerability.severity`, 'expected Critical, High, Medium, Low, Negligible or Unknown');
      let cvss = maxCvss(vuln['cvss'], `${path}.vulnerability.cvss`, null);
      const aliases: string[] = [];
      for (const [ri, r] of list(match['relatedVulnerabilities'], `${path}.relatedVulnerabilities`, 64).entries()) {
        const related = obj(r, `${path}.relatedVulnerabilities[${ri}]`);
        const rid = vulnId(related['id'], `${path}.relatedVulnerabilities[${ri}].id`);
        if (rid !== id && !aliases.includes(rid)) aliases.push(rid);
        cvss = maxCvss(related['cvss'], `${path}.relatedVulnerabilities[${ri}].cvss`, cvss);
      }
      const fix = optObj(vuln['fix'], `${path}.vulnerability.fix`);
      const versions = list(fix?.['versions'], `${path}.vulnerability.fix.versions`, 64);
      const state = optStr(fix?.['state'], `${path}.vulnerability.fix.state`, 32);
      const artifact = optObj(match['artifact'], `${path}.artifact`);
      const purl = optStr(artifact?.['purl'], `${path}.artifact.purl`, 2048);
      findings.push({
        id,
        aliases,
        severity,
        cvss,
        fixable: state === 'fixed' && versions.length > 0,
        package: artifact ? {
          name: str(artifact['name'], `${path}.artifact.name`, 512),
          version: str(artifact['version'] ?? '', `${path}.artifact.version`, 512),
          ...(purl ? { purl } : {}),
        } : null,
      });
    }
    const descriptor = optObj(root['descriptor'], '$.descriptor');
    const version = optStr(descriptor?.['version'], '$.descriptor.version', 64);
    return { format: 'grype', imageDigests: [...digests].sort(), findings, suppressions: [], tool: { name: 'grype', ...(version ? { version } : {}) } };
  },
};
