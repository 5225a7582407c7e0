/**
 * What every CLI command receives: where to write, the clock, the environment. Commands never
 * touch `process` directly, so tests can run `main()` in-process with captured output.
 */
import type { Command } from 'commander';
import { systemClock, type Clock } from '../core/clock.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CliContext {
  readonly io: CliIO;
  readonly clock: Clock;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Set by a command's action; `main` returns it. */
  exitCode: number;
  /** Resolves when a long-running command (server, agent, demo) should stop. */
  readonly signal: AbortSignal;
  /** True when this CLI is the process's entry point (bin/ward.js), so a command may replace the process (the agent's lean runtime, ADR 0073); tests running `main()` in-process leave it unset. */
  readonly ownsProcess?: boolean;
}

export type CommandRegistrar = (program: Command, ctx: CliContext) => void;

export const processIO: CliIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

export function defaultContext(signal: AbortSignal): CliContext {
  return { io: processIO, clock: systemClock, env: process.env, exitCode: 0, signal, ownsProcess: true };
}
