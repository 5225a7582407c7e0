/** The registry of scan-report parsers: the built-ins, plus any a deployment registers. */
import { cyclonedxParser } from './cyclonedx/index.js';
import { ScanError } from './errors.js';
import { grypeParser } from './grype/index.js';
import type { ScanReportParser } from './parser.js';
import { trivyParser } from './trivy/index.js';

export const BUILTIN_SCAN_PARSERS: readonly ScanReportParser[] = Object.freeze([trivyParser, grypeParser, cyclonedxParser]);

export class ScanParserRegistry {
  readonly #parsers = new Map<string, ScanReportParser>();

  constructor(parsers: readonly ScanReportParser[] = BUILTIN_SCAN_PARSERS) {
    for (const p of parsers) this.register(p);
  }

  register(parser: ScanReportParser): void {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(parser.format)) throw new TypeError(`bad scan format name ${parser.format}`);
    if (this.#parsers.has(parser.format)) throw new TypeError(`scan format ${parser.format} registered twice`);
    this.#parsers.set(parser.format, parser);
  }

  formats(): string[] {
    return [...this.#parsers.keys()];
  }

  get(format: string): ScanReportParser {
    const p = this.#parsers.get(format);
    if (!p) throw new ScanError('ERR_SCAN_FORMAT_UNKNOWN', `no scan parser for format "${format.slice(0, 32)}"`, { details: { format: format.slice(0, 32) } });
    return p;
  }

  /** The one parser that recognises `doc`; ambiguity or no match is ERR_SCAN_FORMAT_UNKNOWN. */
  detect(doc: unknown): ScanReportParser {
    const matches = [...this.#parsers.values()].filter((p) => {
      try {
        return p.detect(doc);
      } catch {
        return false;
      }
    });
    if (matches.length !== 1) {
      throw new ScanError('ERR_SCAN_FORMAT_UNKNOWN', matches.length === 0 ? 'the report is not in a known scan format' : 'the report matches several formats; name one', {
        details: { candidates: matches.map((p) => p.format) },
      });
    }
    return matches[0] as ScanReportParser;
  }
}
