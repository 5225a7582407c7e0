/**
 * Turns findings into the `vuln.*` identity attributes. Counting rules (documented in
 * docs/reference/scanners.md): a vulnerability counts once per image however many packages it
 * hits, at the highest severity any finding gives it; a finding is suppressed by a VEX
 * statement with the same id (or alias) unless the statement names packages and the finding's
 * package is not among them.
 */
import type { Attribute, AttributeSet } from '../../identity/attributes.js';
import { SEVERITY_RANK, type Finding, type Severity, type Suppression } from './parser.js';

/** Most ids listed in `vuln.cves` (the counts stay exact beyond it). */
export const MAX_LISTED_CVES = 1000;

export interface VulnSummary {
  readonly critical: number;
  readonly high: number;
  readonly medium: number;
  readonly low: number;
  readonly unknown: number;
  readonly maxCvss: number;
  readonly fixable: number;
  /** Sorted unique ids (CVE ids where known), capped at MAX_LISTED_CVES. */
  readonly cves: readonly string[];
  /** Vulnerabilities removed by VEX statements. */
  readonly suppressed: readonly string[];
  readonly total: number;
}

const CVE_RE = /^CVE-\d{4}-\d{4,}$/;

function suppressedBy(f: Finding, suppressions: readonly Suppression[]): Suppression | undefined {
  const ids = new Set([f.id, ...f.aliases]);
  return suppressions.find((s) => ids.has(s.id) && (s.packages.length === 0 || (f.package !== null && s.packages.includes(f.package.name))));
}

export function summarizeFindings(findings: readonly Finding[], suppressions: readonly Suppression[] = []): VulnSummary {
  const byId = new Map<string, { severity: Severity; cvss: number | null; fixable: boolean; names: string[] }>();
  const suppressed = new Set<string>();
  for (const f of findings) {
    if (suppressedBy(f, suppressions)) {
      suppressed.add(f.id);
      continue;
    }
    // Key by the CVE when the finding has one, so a GHSA and its CVE count once.
    const cves = [f.id, ...f.aliases].filter((id) => CVE_RE.test(id));
    const key = cves[0] ?? f.id;
    const prev = byId.get(key);
    if (!prev) {
      byId.set(key, { severity: f.severity, cvss: f.cvss, fixable: f.fixable, names: cves.length > 0 ? cves : [f.id] });
    } else {
      if (SEVERITY_RANK[f.severity] > SEVERITY_RANK[prev.severity]) prev.severity = f.severity;
      if (f.cvss !== null && (prev.cvss === null || f.cvss > prev.cvss)) prev.cvss = f.cvss;
      prev.fixable ||= f.fixable;
    }
  }
  const count = (s: Severity) => [...byId.values()].filter((v) => v.severity === s).length;
  const ids = new Set<string>();
  for (const v of byId.values()) for (const n of v.names) ids.add(n);
  let maxCvss = 0;
  for (const v of byId.values()) if (v.cvss !== null && v.cvss > maxCvss) maxCvss = v.cvss;
  return {
    critical: count('critical'),
    high: count('high'),
    medium: count('medium'),
    low: count('low') + count('negligible'),
    unknown: count('unknown'),
    maxCvss,
    fixable: [...byId.values()].filter((v) => v.fixable).length,
    cves: [...ids].sort().slice(0, MAX_LISTED_CVES),
    suppressed: [...suppressed].sort(),
    total: byId.size,
  };
}

/** The attribute set a summary yields, stamped with its source and observation time. */
export function vulnAttributes(summary: VulnSummary, source: string, observedAt: number): AttributeSet {
  const a = (value: Attribute['value']): Attribute => Object.freeze({ value, source, observedAt });
  return Object.freeze({
    'vuln.critical': a(summary.critical),
    'vuln.high': a(summary.high),
    'vuln.medium': a(summary.medium),
    'vuln.maxCvss': a(summary.maxCvss),
    'vuln.fixable': a(summary.fixable),
    'vuln.cves': a(Object.freeze([...summary.cves])),
  });
}
