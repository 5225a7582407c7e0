/** Starts `ward agent …` as a real child process and waits for its ready line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('./ward-bin.ts', import.meta.url));

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly ready: { ports?: { inbound: number[]; outbound: number[]; httpProxy?: number; admin?: number }; workers?: number; runtime?: string };
  stderr(): string;
  stop(): Promise<number | null>;
}

export function wardArgs(args: readonly string[]): string[] {
  return ['--import', 'tsx', BIN, ...args];
}

export interface StartOptions {
  /** Node arguments that run the CLI (default: tsx + the source entry). */
  readonly entry?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export async function startAgentProcess(args: readonly string[], timeoutMs = 20_000, options: StartOptions = {}): Promise<AgentProcess> {
  const argv = options.entry === undefined ? wardArgs(args) : [...options.entry, ...args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let out = '';
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const ready = await new Promise<AgentProcess['ready']>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent not ready in time: ${err}`));
    }, timeoutMs);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"ready":true'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as AgentProcess['ready']);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited ${code}: ${err}`));
    });
  });
  return {
    child,
    ready,
    stderr: () => err,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      child.kill('SIGTERM');
    }),
  };
}
