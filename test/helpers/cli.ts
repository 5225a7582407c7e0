/** Runs the `ward` CLI in-process with captured output and an injectable clock/env. */
import { main } from '../../src/cli/main.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import type { CliContext } from '../../src/cli/context.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: readonly string[],
  options: { clock?: Clock; env?: Record<string, string | undefined>; signal?: AbortSignal } = {},
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = {
    io: { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) },
    clock: options.clock ?? systemClock,
    env: options.env ?? {},
    exitCode: 0,
    signal: options.signal ?? new AbortController().signal,
  };
  const code = await main(args, ctx);
  return { code, stdout, stderr };
}
