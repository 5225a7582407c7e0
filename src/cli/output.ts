/**
 * Output conventions shared by every command: `-o text|json|yaml`, errors as
 * `ward: ERR_CODE: message` on stderr (or `{"error":{code,message}}` on stdout with -o json).
 */
import { stringify as toYaml } from 'yaml';
import { isWardError } from '../core/errors.js';
import type { CliContext } from './context.js';

export type OutputFormat = 'text' | 'json' | 'yaml' | 'wide';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'yaml', 'wide'];

export function parseOutputFormat(value: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new Error(`output format must be one of ${OUTPUT_FORMATS.join(', ')}`);
}

/** Prints a result in the requested format; `text` uses the command's own renderer. */
export function printResult(ctx: CliContext, format: OutputFormat, value: unknown, renderText: () => string): void {
  if (format === 'json') ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  else if (format === 'yaml') ctx.io.stdout(toYaml(value));
  else {
    const text = renderText();
    ctx.io.stdout(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  }
}

/** Reports a failure with its stable code and returns the exit code (1). */
export function reportError(ctx: CliContext, format: OutputFormat, error: unknown): number {
  const body = isWardError(error)
    ? error.toJSON()
    : { code: 'ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) };
  if (format === 'json') ctx.io.stdout(`${JSON.stringify({ error: body }, null, 2)}\n`);
  else ctx.io.stderr(`ward: ${body.code}: ${body.message}\n`);
  return 1;
}
