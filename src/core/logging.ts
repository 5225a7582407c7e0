/**
 * Structured logging (pino). Secrets never reach a log line: the redact list below censors
 * every field name that can hold key material or credentials, at any depth we log.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACTED_FIELDS: readonly string[] = Object.freeze([
  'key', 'privateKey', 'token', 'password', 'secret', 'authorization', 'masterKey', 'jwt',
  '*.key', '*.privateKey', '*.token', '*.password', '*.secret', '*.authorization', '*.masterKey', '*.jwt',
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie',
]);

export interface LoggerOptions {
  name: string;
  level?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Where lines go; default stderr so command output on stdout stays machine-readable. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: [...REDACTED_FIELDS], censor: '[redacted]' },
      base: undefined,
    },
    options.destination ?? pino.destination(2),
  );
}

/** A logger that drops everything; for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
