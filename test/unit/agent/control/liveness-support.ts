// Shared by the control-plane liveness tests: a relay that can go silent, a clock that can lag or
// lead real time, a plain GET for the agent's admin endpoint.
//
// StallProxy: a TCP relay in front of the server's agent API that can go silent without closing anything:
// `stall()` stops forwarding bytes on every open connection and holds new ones open without
// connecting them (a peer that vanished behind a NAT or a dead load balancer: no FIN, no RST);
// `resume()` drops the stalled sockets and relays new connections again. TLS passes through
// untouched (the agent pins the server's SPIFFE ID, not the address).
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../../../../src/core/clock.js';

/**
 * Real time shifted by `lag` ms (positive: behind). Shared by a server and an agent, it lets a
 * certificate issued while the clock lags expire, for both of them and for TLS, seconds later in
 * real time once the lag is taken back, without waiting out the server's minimum TTL.
 */
export class SkewClock implements Clock {
  lag = 0;
  now(): number {
    return Date.now() - this.lag;
  }
}

/** GET on the agent's admin endpoint. */
export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export class StallProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #stalled = false;
  port = 0;

  private constructor(readonly targetPort: number) {
    this.#server = createServer((client) => this.#accept(client));
  }

  static async start(targetPort: number): Promise<StallProxy> {
    const p = new StallProxy(targetPort);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    p.port = (p.#server.address() as { port: number }).port;
    return p;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => undefined);
  }

  #accept(client: Socket): void {
    this.#track(client);
    if (this.#stalled) return; // held open, never answered
    const upstream = connect(this.targetPort, '127.0.0.1');
    this.#track(upstream);
    client.on('data', (d: Buffer) => {
      if (!this.#stalled) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!this.#stalled) client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  /** Silently stops forwarding: nothing is closed, nothing more arrives either way. */
  stall(): void {
    this.#stalled = true;
  }

  /** Drops every stalled connection and relays new ones again. */
  resume(): void {
    for (const s of this.#sockets) s.destroy();
    this.#stalled = false;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
