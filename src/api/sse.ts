/**
 * Server-sent events (the `text/event-stream` format of the WHATWG HTML spec, §9.2), the framing
 * of the agent watch stream. The encoder is used by the server; the incremental, size-bounded
 * decoder by the agent and the CLI. The decoder reads untrusted bytes: it never throws on
 * malformed input except when a message exceeds `maxMessageBytes` (a hostile or broken server).
 */
import { ApiError } from './errors.js';

export interface SseMessage {
  readonly id?: string;
  readonly event: string;
  readonly data: string;
}

/** Encodes one message. `data` may hold newlines; each line becomes its own `data:` field. */
export function encodeSse(message: { id?: string; event?: string; data: string }): string {
  let out = '';
  if (message.id !== undefined) out += `id: ${sanitizeField(message.id)}\n`;
  if (message.event !== undefined) out += `event: ${sanitizeField(message.event)}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** A comment line; keeps idle connections alive through proxies. */
export function encodeSseComment(text: string): string {
  return `: ${sanitizeField(text)}\n\n`;
}

function sanitizeField(value: string): string {
  return value.replace(/[\r\n\0]/g, '');
}

export const DEFAULT_MAX_SSE_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Incremental decoder: feed chunks, get whole messages. Follows the spec's field rules (one
 * optional space after the colon, `id` containing NUL ignored, unknown fields ignored, comments
 * skipped, a message without data not dispatched).
 */
export class SseDecoder {
  readonly #max: number;
  #buffer = '';
  #data: string[] = [];
  #dataBytes = 0;
  #event = '';
  #id: string | undefined;
  /** The last id seen, as the spec's "last event ID buffer": what to resume from. */
  lastEventId: string | undefined;

  constructor(maxMessageBytes = DEFAULT_MAX_SSE_MESSAGE_BYTES) {
    this.#max = maxMessageBytes;
  }

  push(chunk: string): SseMessage[] {
    const out: SseMessage[] = [];
    this.#buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (m === null) break;
      // A lone CR at the end of a chunk might be the first half of CRLF: wait for more.
      if (m[0] === '\r' && m.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      this.#line(line, out);
    }
    if (this.#buffer.length + this.#dataBytes > this.#max) {
      throw new ApiError('ERR_API_STREAM_TOO_LARGE', `watch stream message exceeds ${this.#max} bytes`, { details: { limit: this.#max } });
    }
    return out;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.#id !== undefined) this.lastEventId = this.#id;
      if (this.#data.length > 0) {
        const msg: SseMessage = { event: this.#event === '' ? 'message' : this.#event, data: this.#data.join('\n'), ...(this.lastEventId === undefined ? {} : { id: this.lastEventId }) };
        out.push(msg);
      }
      this.#data = [];
      this.#dataBytes = 0;
      this.#event = '';
      this.#id = undefined;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data.push(value);
        this.#dataBytes += value.length + 1;
        if (this.#dataBytes > this.#max) {
          throw new ApiError('ERR_API_STREAM_TOO_LARGE', `watch stream message exceeds ${this.#max} bytes`, { details: { limit: this.#max } });
        }
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      default:
        break; // `retry` and unknown fields are ignored
    }
  }
}
