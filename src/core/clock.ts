/**
 * Injected time. Anything time-based (certificates, rotation, windows, token expiry) takes a
 * {@link Clock} so tests can freeze or advance it.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/**
 * A clock that moves only when told to.
 *
 * @example
 * const clock = new ManualClock('2026-01-01T00:00:00Z');
 * clock.advance(60_000);
 */
export class ManualClock implements Clock {
  #now: number;

  constructor(start: number | string | Date) {
    this.#now = typeof start === 'number' ? start : new Date(start).getTime();
    if (!Number.isFinite(this.#now)) throw new RangeError(`ManualClock: invalid start ${String(start)}`);
  }

  now(): number {
    return this.#now;
  }

  set(at: number | string | Date): void {
    this.#now = typeof at === 'number' ? at : new Date(at).getTime();
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}

/** The clock's time as a Date. */
export function clockDate(clock: Clock): Date {
  return new Date(clock.now());
}
