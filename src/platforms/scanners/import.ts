/**
 * `importScanReport`: the one operation the server and `ward scan import` call. It bounds the
 * input, parses JSON, picks the parser (named or detected), applies VEX documents, and returns
 * the `vuln.*` attributes per image digest. Pure: the caller stores the result.
 *
 * @example
 * const scan = importScanReport(body, { observedAt: clock.now(), vex: [vexText] });
 * for (const digest of scan.imageDigests) await store.images.putScan({ imageDigest: digest, scanner: scan.format, attributes: scan.attributes, summary: scan.summary });
 */
import type { AttributeSet } from '../../identity/attributes.js';
import { ScanError } from './errors.js';
import type { ParsedReport, Suppression } from './parser.js';
import { DIGEST_RE } from './read.js';
import { ScanParserRegistry } from './registry.js';
import { summarizeFindings, vulnAttributes, type VulnSummary } from './summarize.js';

export const DEFAULT_MAX_REPORT_BYTES = 64 * 1024 * 1024;

export interface ImportOptions {
  /** Epoch ms stamped on the attributes (from the injected clock). */
  readonly observedAt: number;
  /** Force a format instead of detecting it. */
  readonly format?: string;
  /** The image digest, when the report names none (filesystem scans) or to pick one. */
  readonly imageDigest?: string;
  /** CycloneDX VEX documents whose `not_affected` statements suppress findings. */
  readonly vex?: readonly (string | Uint8Array)[];
  readonly maxBytes?: number;
  readonly registry?: ScanParserRegistry;
}

export interface ScanImport {
  readonly format: string;
  /** `scan:<format>`: the attribute source. */
  readonly source: string;
  readonly imageDigests: readonly string[];
  readonly attributes: AttributeSet;
  readonly summary: VulnSummary;
}

const defaultRegistry = new ScanParserRegistry();

/** Parses JSON text or bytes with a size bound; failures are ScanErrors. */
export function parseReportJson(input: string | Uint8Array, maxBytes = DEFAULT_MAX_REPORT_BYTES): unknown {
  const size = typeof input === 'string' ? (input.length > maxBytes ? Infinity : new TextEncoder().encode(input).byteLength) : input.byteLength;
  if (size > maxBytes) throw new ScanError('ERR_SCAN_TOO_LARGE', `report larger than ${maxBytes} bytes`, { details: { maxBytes } });
  try {
    return JSON.parse(typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input));
  } catch (cause) {
    throw new ScanError('ERR_SCAN_JSON', 'report is not valid JSON (UTF-8)', { cause });
  }
}

function parseWith(registry: ScanParserRegistry, doc: unknown, format?: string): ParsedReport {
  const parser = format === undefined ? registry.detect(doc) : registry.get(format);
  if (!parser.detect(doc)) throw new ScanError('ERR_SCAN_FORMAT_UNKNOWN', `the report is not ${parser.format} output`, { details: { format: parser.format } });
  try {
    return parser.parse(doc);
  } catch (e) {
    if (e instanceof ScanError) throw e;
    // A parser bug must still fail closed with a code.
    throw new ScanError('ERR_SCAN_INVALID', `the ${parser.format} report could not be read`, { cause: e, details: { path: '$' } });
  }
}

export function importScanReport(input: string | Uint8Array, options: ImportOptions): ScanImport {
  const registry = options.registry ?? defaultRegistry;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_REPORT_BYTES;
  const report = parseWith(registry, parseReportJson(input, maxBytes), options.format);
  let digests = [...report.imageDigests];
  if (options.imageDigest !== undefined) {
    const d = options.imageDigest.toLowerCase();
    if (!DIGEST_RE.test(d)) throw new ScanError('ERR_SCAN_INVALID', 'imageDigest must be sha256:<hex>', { details: { path: 'imageDigest' } });
    if (digests.length > 0 && !digests.includes(d)) throw new ScanError('ERR_SCAN_INVALID', 'the report is about another image digest', { details: { path: 'imageDigest' } });
    digests = [d];
  }
  if (digests.length === 0) throw new ScanError('ERR_SCAN_NO_DIGEST', 'the report names no image digest; pass imageDigest');
  const suppressions: Suppression[] = [...report.suppressions];
  for (const v of options.vex ?? []) {
    const vex = parseWith(registry, parseReportJson(v, maxBytes), 'cyclonedx');
    // A VEX that names images applies only to those; one that names none applies to this report.
    if (vex.imageDigests.length === 0 || vex.imageDigests.some((d) => digests.includes(d))) suppressions.push(...vex.suppressions);
  }
  const summary = summarizeFindings(report.findings, suppressions);
  const source = `scan:${report.format}`;
  return { format: report.format, source, imageDigests: digests, attributes: vulnAttributes(summary, source, options.observedAt), summary };
}
