// The protected application of `ward agent run -- <command…>`, in static and control mode alike.
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { CliContext } from '../../context.js';

/**
 * Runs the protected application as a child until it exits, forwarding Ctrl-C/SIGTERM as
 * SIGTERM. Resolves to its exit code (128 + signal number when killed, 127 when it cannot start).
 */
export function superviseChild(command: readonly string[], env: Record<string, string | undefined>, ctx: CliContext): Promise<number> {
  const child = spawn(command[0] as string, command.slice(1), { stdio: 'inherit', env });
  return new Promise<number>((resolve) => {
    const onAbort = (): void => void child.kill('SIGTERM');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      ctx.signal.removeEventListener('abort', onAbort);
      ctx.io.stderr(`ward: ERR_AGENT_CHILD: could not start ${command[0]}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`);
      resolve(127);
    });
    child.once('exit', (exitCode, signal) => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(exitCode ?? 128 + ((signal === null ? 0 : osConstants.signals[signal]) ?? 0));
    });
  });
}
