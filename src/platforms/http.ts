/**
 * The one HTTP(S) client every platform API client uses: bounded time, bounded body size,
 * custom CA for in-cluster TLS, and stable error codes. Built on node:http/https so a client can
 * pin a CA without a global agent.
 */
import { request as httpRequest, type IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PlatformError } from './errors.js';

export interface PlatformRequest {
  readonly url: string;
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** PEM CA bundle that must have signed the server certificate (https only). */
  readonly ca?: string;
  /** Whole-request deadline; default 10 s. */
  readonly timeoutMs?: number;
  /** Response bodies beyond this are refused; default 1 MiB. */
  readonly maxBodyBytes?: number;
  readonly signal?: AbortSignal;
}

export interface PlatformResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Opens a request and resolves with the response head; the caller consumes the stream. */
export function openStream(req: PlatformRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      reject(new PlatformError('ERR_PLATFORM_UNREACHABLE', 'invalid platform API URL'));
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      reject(new PlatformError('ERR_PLATFORM_UNREACHABLE', `unsupported URL scheme ${url.protocol}`));
      return;
    }
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    const options = { method: req.method ?? 'GET', headers, signal: req.signal, ...(url.protocol === 'https:' && req.ca !== undefined ? { ca: req.ca } : {}) };
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timedOut = (): PlatformError => new PlatformError('ERR_PLATFORM_UNREACHABLE', `${url.host}: timed out`);
    let response: IncomingMessage | undefined;
    const r = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res) => {
      response = res;
      res.once('close', () => clearTimeout(deadline));
      resolve(res);
    });
    // Idle timeout, and a whole-request deadline: a server that drips a byte at a time must not
    // hold an attestation open past timeoutMs (0 = none, for watch streams).
    r.setTimeout(timeoutMs, () => r.destroy(timedOut()));
    const deadline = setTimeout(() => {
      const error = timedOut();
      if (response) response.destroy(error);
      r.destroy(error);
    }, timeoutMs > 0 ? timeoutMs : 2 ** 31 - 1);
    deadline.unref();
    if (timeoutMs <= 0) clearTimeout(deadline);
    r.once('close', () => {
      if (!response) clearTimeout(deadline);
    });
    r.on('error', (error) => {
      reject(error instanceof PlatformError ? error : new PlatformError('ERR_PLATFORM_UNREACHABLE', `${url.host}: ${(error as NodeJS.ErrnoException).code ?? 'request failed'}`, { cause: error }));
    });
    r.end(req.body);
  });
}

/** Performs a request and reads the whole (bounded) body. */
export async function platformRequest(req: PlatformRequest): Promise<PlatformResponse> {
  const res = await openStream(req);
  const limit = req.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new PlatformError('ERR_PLATFORM_RESPONSE_TOO_LARGE', `response larger than ${limit} bytes`, { details: { limit } });
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    res.destroy();
    if (error instanceof PlatformError) throw error;
    throw new PlatformError('ERR_PLATFORM_UNREACHABLE', 'response interrupted', { cause: error });
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/** Requires one of `expected` statuses, else ERR_PLATFORM_HTTP_STATUS. */
export function expectStatus(res: PlatformResponse, what: string, expected: readonly number[] = [200]): PlatformResponse {
  if (!expected.includes(res.status)) {
    throw new PlatformError('ERR_PLATFORM_HTTP_STATUS', `${what}: HTTP ${res.status}`, { details: { status: res.status } });
  }
  return res;
}

/** Parses a JSON body, else ERR_PLATFORM_RESPONSE_INVALID. */
export function jsonBody(res: PlatformResponse, what: string): unknown {
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch (error) {
    throw new PlatformError('ERR_PLATFORM_RESPONSE_INVALID', `${what}: body is not JSON`, { cause: error });
  }
}

/** ERR_PLATFORM_RESPONSE_INVALID for a documented field that is missing or mistyped. */
export function invalidResponse(what: string, path: string): PlatformError {
  return new PlatformError('ERR_PLATFORM_RESPONSE_INVALID', `${what}: ${path} is missing or of the wrong type`, { details: { path } });
}
