/**
 * The scan-report parser plug-in point.
 *
 * Contract every parser keeps (checked by test/unit/platforms/scanners/contract.test.ts):
 * - `detect(doc)` is cheap, never throws, and is true only for documents of its format.
 * - `parse(doc)` either returns a {@link ParsedReport} or throws a ScanError with a code
 *   (ERR_SCAN_INVALID naming the path, ERR_SCAN_TOO_LARGE); never a bare TypeError.
 * - It reports every finding (severity, CVSS, fix availability, package), the image digests the
 *   report names (empty when it names none), and VEX statements it carries (`not_affected` /
 *   `false_positive` → suppressions). It does not count or decide: `summarizeFindings` does.
 * - It is pure: no I/O, no clock (the caller stamps `observedAt`).
 */

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'negligible' | 'unknown';

export const SEVERITY_RANK: Readonly<Record<Severity, number>> = Object.freeze({
  unknown: 0, negligible: 1, low: 2, medium: 3, high: 4, critical: 5,
});

export interface Finding {
  /** The scanner's id (`CVE-2024-3094`, `GHSA-…`). */
  readonly id: string;
  /** Other ids of the same vulnerability (CVE aliases of a GHSA). */
  readonly aliases: readonly string[];
  readonly severity: Severity;
  /** Highest CVSS base score reported, if any. */
  readonly cvss: number | null;
  /** A fixed version exists. */
  readonly fixable: boolean;
  readonly package: { readonly name: string; readonly version: string; readonly purl?: string } | null;
}

/** A VEX statement: this vulnerability does not affect the image (optionally: only this package). */
export interface Suppression {
  readonly id: string;
  readonly state: 'not_affected' | 'false_positive';
  /** Package names the statement is limited to; empty = the whole image. */
  readonly packages: readonly string[];
  readonly justification?: string;
}

export interface ParsedReport {
  readonly format: string;
  /** Image digests (`sha256:…`) the report is about; may be empty. */
  readonly imageDigests: readonly string[];
  readonly findings: readonly Finding[];
  readonly suppressions: readonly Suppression[];
  /** Scanner name and version if the report says. */
  readonly tool?: { readonly name: string; readonly version?: string };
}

export interface ScanReportParser {
  /** Stable format name: `trivy`, `grype`, `cyclonedx`. */
  readonly format: string;
  detect(doc: unknown): boolean;
  parse(doc: unknown): ParsedReport;
}
