/**
 * The connection to the application on loopback for L7 ports: a keep-alive pool for HTTP/1.1
 * apps, or one multiplexed cleartext HTTP/2 session (re-opened on failure) for h2c apps (gRPC).
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders as H2Headers } from 'node:http2';
import { loadHttp2 } from './lazy-http2.js';

export interface AppTarget {
  readonly host: string;
  readonly port: number;
  readonly protocol: 'http1' | 'h2c';
}

export class AppClient {
  readonly #agent: HttpAgent;
  #session: ClientHttp2Session | undefined;

  constructor(readonly target: AppTarget, connectTimeoutMs: number) {
    this.#agent = new HttpAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, timeout: connectTimeoutMs, scheduling: 'lifo' });
  }

  requestHttp1(method: string, path: string, headers: OutgoingHttpHeaders): ClientRequest {
    return httpRequest({ agent: this.#agent, host: this.target.host, port: this.target.port, method, path, headers, setHost: false });
  }

  requestH2(headers: OutgoingHttpHeaders): ClientHttp2Stream {
    let session = this.#session;
    if (session === undefined || session.closed || session.destroyed) {
      session = loadHttp2().connect(`http://${this.target.host}:${this.target.port}`);
      session.on('error', () => undefined);
      const s = session;
      session.once('close', () => {
        if (this.#session === s) this.#session = undefined;
      });
      this.#session = session;
    }
    return session.request(headers as H2Headers);
  }

  close(): void {
    this.#agent.destroy();
    this.#session?.destroy();
    this.#session = undefined;
  }
}

export type { IncomingHttpHeaders };
