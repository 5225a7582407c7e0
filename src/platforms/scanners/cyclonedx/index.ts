/**
 * CycloneDX JSON with a `vulnerabilities` array: a VEX document, or a vulnerability report
 * (e.g. `trivy image -f cyclonedx --scanners vuln`). Each vulnerability whose
 * `analysis.state` is `not_affected` or `false_positive` becomes a suppression (limited to the
 * packages its `affects[].ref` purls name); `resolved` ones are dropped; the others are
 * findings. Image digests come from `pkg:oci/…@sha256%3A…` purls (metadata.component or
 * affects refs) and the `aquasecurity:trivy:RepoDigest` property.
 */
import { SEVERITY_RANK, type Finding, type ParsedReport, type ScanReportParser, type Severity, type Suppression } from '../parser.js';
import { cvssScore, digestOf, invalid, isObject, list, obj, optObj, optStr, str, vulnId } from '../read.js';

const SEVERITIES: Readonly<Record<string, Severity>> = {
  critical: 'critical', high: 'high', medium: 'medium', low: 'low', info: 'negligible', none: 'negligible', unknown: 'unknown',
};
const STATES = new Set(['resolved', 'resolved_with_pedigree', 'exploitable', 'in_triage', 'false_positive', 'not_affected']);

/** The purl inside a ref: a bare `pkg:…` or the fragment of a BOM-Link (`urn:cdx:…#pkg:…`). */
function purlOf(ref: string): string | null {
  const p = ref.startsWith('pkg:') ? ref : ref.includes('#pkg:') ? ref.slice(ref.indexOf('#') + 1) : null;
  return p;
}

function ociDigest(purl: string): string | null {
  if (!purl.startsWith('pkg:oci/')) return null;
  const at = purl.indexOf('@');
  if (at < 0) return null;
  let version = purl.slice(at + 1).split(/[?#]/)[0] ?? '';
  try {
    version = decodeURIComponent(version);
  } catch {
    return null;
  }
  return digestOf(version);
}

/** Package name from a purl: `pkg:type/ns/name@version` → `name`. */
function packageName(purl: string): string | null {
  const m = /^pkg:[a-z0-9.+-]+\/(?:[^@?#]*\/)?([^/@?#]+)/i.exec(purl);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return null;
  }
}

export const cyclonedxParser: ScanReportParser = {
  format: 'cyclonedx',

  detect(doc) {
    return isObject(doc) && doc['bomFormat'] === 'CycloneDX';
  },

  parse(doc): ParsedReport {
    const root = obj(doc, '$');
    if (root['bomFormat'] !== 'CycloneDX') throw invalid('$.bomFormat', 'expected CycloneDX');
    const spec = str(root['specVersion'], '$.specVersion', 8);
    if (!/^1\.[4-7]$/.test(spec)) throw invalid('$.specVersion', 'vulnerabilities need CycloneDX 1.4 or later');
    const digests = new Set<string>();
    const component = optObj(optObj(root['metadata'], '$.metadata')?.['component'], '$.metadata.component');
    if (component) {
      const purl = optStr(component['purl'], '$.metadata.component.purl', 2048);
      const d = purl ? ociDigest(purl) : null;
      if (d) digests.add(d);
      for (const [i, p] of list(component['properties'], '$.metadata.component.properties', 1024).entries()) {
        const prop = obj(p, `$.metadata.component.properties[${i}]`);
        if (prop['name'] === 'aquasecurity:trivy:RepoDigest') {
          const rd = digestOf(str(prop['value'], `$.metadata.component.properties[${i}].value`, 1024));
          if (rd) digests.add(rd);
        }
      }
    }
    // bom-ref -> purl, so affects refs that point at components resolve to package names.
    const refs = new Map<string, string>();
    for (const [i, c] of list(root['components'], '$.components').entries()) {
      const comp = obj(c, `$.components[${i}]`);
      const ref = optStr(comp['bom-ref'], `$.components[${i}].bom-ref`, 2048);
      const purl = optStr(comp['purl'], `$.components[${i}].purl`, 2048);
      if (ref && purl) refs.set(ref, purl);
    }
    const findings: Finding[] = [];
    const suppressions: Suppression[] = [];
    for (const [vi, v] of list(root['vulnerabilities'], '$.vulnerabilities').entries()) {
      const path = `$.vulnerabilities[${vi}]`;
      const vuln = obj(v, path);
      const id = vulnId(vuln['id'], `${path}.id`);
      let severity: Severity = 'unknown';
      let cvss: number | null = null;
      for (const [ri, r] of list(vuln['ratings'], `${path}.ratings`, 64).entries()) {
        const rating = obj(r, `${path}.ratings[${ri}]`);
        const sev = optStr(rating['severity'], `${path}.ratings[${ri}].severity`, 16);
        if (sev !== undefined) {
          const mapped = SEVERITIES[sev];
          if (mapped === undefined) throw invalid(`${path}.ratings[${ri}].severity`, 'not a CycloneDX severity');
          if (mapped !== 'unknown' && (severity === 'unknown' || SEVERITY_RANK[mapped] > SEVERITY_RANK[severity])) severity = mapped;
        }
        const method = optStr(rating['method'], `${path}.ratings[${ri}].method`, 32);
        const score = cvssScore(rating['score'], `${path}.ratings[${ri}].score`);
        if (score !== undefined && (method === undefined || method.startsWith('CVSS')) && (cvss === null || score > cvss)) cvss = score;
      }
      const packages: string[] = [];
      let firstPurl: string | undefined;
      for (const [ai, a] of list(vuln['affects'], `${path}.affects`, 10_000).entries()) {
        const ref = str(obj(a, `${path}.affects[${ai}]`)['ref'], `${path}.affects[${ai}].ref`, 2048);
        const purl = refs.get(ref) ?? purlOf(ref);
        if (!purl) continue;
        const d = ociDigest(purl);
        if (d) {
          digests.add(d);
          continue;
        }
        const name = packageName(purl);
        if (name && !packages.includes(name)) packages.push(name);
        firstPurl ??= purl;
      }
      const analysis = optObj(vuln['analysis'], `${path}.analysis`);
      const state = optStr(analysis?.['state'], `${path}.analysis.state`, 32);
      if (state !== undefined && !STATES.has(state)) throw invalid(`${path}.analysis.state`, 'not a CycloneDX impact analysis state');
      if (state === 'resolved' || state === 'resolved_with_pedigree') continue;
      const recommendation = optStr(vuln['recommendation'], `${path}.recommendation`, 4096);
      const aliases: string[] = [];
      for (const [ri, r] of list(vuln['references'], `${path}.references`, 64).entries()) {
        const rid = optStr(obj(r, `${path}.references[${ri}]`)['id'], `${path}.references[${ri}].id`, 128);
        if (rid && rid !== id && /^CVE-\d{4}-\d{4,}$/.test(rid)) aliases.push(rid);
      }
      // A vulnerability with a not_affected / false_positive analysis is reported as found and
      // suppressed, so the summary can say what VEX removed.
      findings.push({
        id,
        aliases,
        severity,
        cvss,
        fixable: recommendation !== undefined && /upgrade|update|fixed/i.test(recommendation),
        package: firstPurl ? { name: packageName(firstPurl) ?? firstPurl, version: '', purl: firstPurl } : null,
      });
      if (state === 'not_affected' || state === 'false_positive') {
        const justification = optStr(analysis?.['justification'], `${path}.analysis.justification`, 64);
        suppressions.push({ id, state, packages, ...(justification ? { justification } : {}) });
      }
    }
    return { format: 'cyclonedx', imageDigests: [...digests].sort(), findings, suppressions };
  },
};
