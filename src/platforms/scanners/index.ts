/** Scan-report parsers (Trivy, Grype, CycloneDX/VEX) → `vuln.*` attributes per image digest. */
export { importScanReport, parseReportJson, DEFAULT_MAX_REPORT_BYTES, type ImportOptions, type ScanImport } from './import.js';
export { ScanParserRegistry, BUILTIN_SCAN_PARSERS } from './registry.js';
export { summarizeFindings, vulnAttributes, MAX_LISTED_CVES, type VulnSummary } from './summarize.js';
export { SEVERITY_RANK, type ScanReportParser, type ParsedReport, type Finding, type Suppression, type Severity } from './parser.js';
export { SCAN_ERRORS, ScanError, type ScanErrorCode } from './errors.js';
export { trivyParser } from './trivy/index.js';
export { grypeParser } from './grype/index.js';
export { cyclonedxParser } from './cyclonedx/index.js';
