// Real processes for the control-plane mesh test: `ward server start` as a child (killable with
// SIGKILL and restartable on the same store and ports), plain HTTP calls with bounded waits, and a
// TLS probe that reads the certificate an agent presents.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Agent } from 'node:http';
import { httpGet } from '../../unit/agent/support/net.js';
import { connect as tlsConnect } from 'node:tls';
import { wardArgs } from '../../unit/agent/support/process.js';

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly adminUrl: string;
  readonly exited: Promise<number | null>;
  stderr(): string;
  /** Sends `signal` and resolves with the exit code (or signal name) once the process is gone. */
  stop(signal: NodeJS.Signals): Promise<number | string | null>;
}

/** `ward server start …` as a child process; resolves once it printed its JSON start line. */
export async function startServerProcess(args: readonly string[], timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, wardArgs(['server', 'start', ...args, '-o', 'json']), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = await new Promise<{ adminUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in time: ${err}`));
    }, timeoutMs);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      try {
        const parsed = JSON.parse(out) as { adminUrl: string };
        clearTimeout(timer);
        resolve(parsed);
      } catch {
        // not a whole line yet
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}: ${err}`));
    });
  });
  return {
    child,
    adminUrl: started.adminUrl,
    exited,
    stderr: () => err,
    stop: (signal) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode);
      child.once('exit', (code, sig) => resolve(code ?? sig));
      child.kill(signal);
    }),
  };
}

export interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One GET to `127.0.0.1:port`; a fresh connection unless a keep-alive `agent` is given. */
export function get(port: number, path: string, agent: Agent | false = false): Promise<Reply> {
  return httpGet(port, path, agent);
}

/** Polls `check` every 50 ms until it holds; throws `what` after `ms`. Resolves with the elapsed ms. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<number> {
  const t0 = performance.now();
  while (!(await check())) {
    if (performance.now() - t0 > ms) throw new Error(`not met within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - t0;
}

/**
 * The serial of the certificate the agent presents on `port`, verified against `bundlePem`. The
 * probe sends no client certificate: with TLS 1.3 the client has the server's certificate before
 * the agent refuses it, which is all the probe needs.
 */
export function presentedSerial(port: number, bundlePem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: bundlePem, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
    s.once('secureConnect', () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? '';
      s.destroy();
      resolve(serial);
    });
    s.once('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('probe timeout')));
  });
}

/** A Prometheus gauge/counter value without labels from the agent's admin port. */
export async function metric(adminPort: number, name: string): Promise<number> {
  const text = (await get(adminPort, '/metrics')).body;
  const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  if (m === null) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}
