/**
 * `ward server start …` as a real child process (tsx loader, `-o json`): resolves once it has
 * printed its JSON start line. The caller stops it with SIGTERM and awaits `exited`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';

const MAIN = resolve('src/cli/main.ts');

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly started: { readonly adminUrl: string };
  /** The exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

export async function startServerProcess(t: TestContext, args: readonly string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `import(${JSON.stringify(MAIN)}).then((m) => m.main(process.argv.slice(1))).then((c) => { process.exitCode = c; })`,
    'server', 'start', ...args, '--admin-listen', '127.0.0.1:0', '--agent-listen', '127.0.0.1:0', '--log-level', 'warn', '-o', 'json'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const started = await new Promise<{ adminUrl: string }>((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      try {
        const parsed = JSON.parse(out) as { adminUrl: string };
        clearTimeout(timer);
        resolveStart(parsed);
      } catch {
        // not complete yet
      }
    });
    child.on('exit', () => reject(new Error(`server exited: ${err}`)));
  });
  return { child, started, exited, stderr: () => err };
}
