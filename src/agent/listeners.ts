/**
 * Opens the agent's inbound ports and outbound upstreams for both modes (static and control):
 * each on the native L4 data plane when it is eligible and the plane is available (ADR 0049),
 * otherwise on the Node layers. Returns the bound ports, in config order, and the closers.
 */
import type { Logger } from '../core/logging.js';
import type { ProxyAgentConfig } from './config.js';
import { AgentError } from './errors.js';
import type { JwtVerifier } from './proxy/http/jwt.js';
import { NativeL4, nativeHttpEligible, nativeInboundEligible, nativeOutboundEligible } from './proxy/native/l4.js';
import type { OutboundDeps } from './proxy/outbound.js';

export interface OpenedListeners {
  readonly inbound: number[];
  readonly outbound: number[];
  /** Which plane each inbound / outbound entry runs on, for the start log and tests. */
  readonly planes: { readonly inbound: ('native' | 'node')[]; readonly outbound: ('native' | 'node')[] };
  readonly closers: (() => Promise<void>)[];
}

const BIND_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'EINVAL', 'EPERM']);

/** Runs one bind; a system refusal becomes ERR_AGENT_LISTEN naming what could not be bound (same code on both planes). */
async function bind(what: string, host: string, port: number, open: () => number | Promise<number>): Promise<number> {
  try {
    return await open();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && BIND_ERRORS.has(code)) throw new AgentError('ERR_AGENT_LISTEN', `${what} ${host}:${port} could not be bound: ${code}`, { cause: error, details: { host, port, error: code } });
    throw error;
  }
}

export async function openListeners(config: Pick<ProxyAgentConfig, 'inbound' | 'outbound' | 'dataPlane' | 'workers'>, deps: OutboundDeps & { readonly jwt: JwtVerifier | undefined }, logger: Logger): Promise<OpenedListeners> {
  const out: OpenedListeners = { inbound: [], outbound: [], planes: { inbound: [], outbound: [] }, closers: [] };
  const wantsNative = config.workers === 1 && (config.inbound.some((p) => nativeInboundEligible(p) || nativeHttpEligible(p)) || config.outbound.some((u) => nativeOutboundEligible(u, u.listenHost)));
  const native = wantsNative || config.dataPlane === 'native' ? NativeL4.open(config.dataPlane, deps, logger) : undefined;
  if (native !== undefined) out.closers.push(() => native.close());
  try {
    for (const port of config.inbound) {
      if (native !== undefined && nativeInboundEligible(port)) {
        out.inbound.push(await bind('inbound port', port.host, port.port, () => native.listenInbound(port)));
        out.planes.inbound.push('native');
        continue;
      }
      if (native !== undefined && nativeHttpEligible(port)) {
        // TLS on the relay thread, the HTTP layer here (ADR 0074).
        const { HttpInbound } = await import('./proxy/http/inbound-http.js');
        const http = new HttpInbound(port, deps);
        out.inbound.push(await bind('inbound port', port.host, port.port, () => native.listenInboundHttp(port, http)));
        out.planes.inbound.push('native');
        continue;
      }
      // The Node layers (with node:http2 and the HTTP paths) load only when a port needs them (ADR 0044).
      const { InboundListener } = await import('./proxy/inbound.js');
      const listener = new InboundListener(port, deps);
      out.inbound.push(await bind('inbound port', port.host, port.port, () => listener.listen()));
      out.planes.inbound.push('node');
      out.closers.push(() => listener.close());
    }
    for (const up of config.outbound) {
      if (native !== undefined && nativeOutboundEligible(up, up.listenHost)) {
        out.outbound.push(await bind(`upstream ${up.name} listener`, up.listenHost, up.listenPort, () => native.listenOutbound(up, up.listenPort, up.listenHost)));
        out.planes.outbound.push('native');
        continue;
      }
      const { OutboundListener } = await import('./proxy/outbound.js');
      const listener = new OutboundListener(up, up.listenPort, deps, up.listenHost);
      out.outbound.push(await bind(`upstream ${up.name} listener`, up.listenHost, up.listenPort, () => listener.listen()));
      out.planes.outbound.push('node');
      out.closers.push(() => listener.close());
    }
  } catch (error) {
    for (const close of out.closers.reverse()) await close().catch(() => undefined);
    throw error;
  }
  return out;
}
