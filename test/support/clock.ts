/**
 * A clock the tests control: it ticks with real time from wherever it is set, so that
 * everything keeps its pace (timeouts, ID tokens the fake issuer mints now) while a test
 * moves the instant its server sees instead of waiting for it.
 */
import type { Clock } from '../../server/src/clock.js';

export interface TestClock extends Clock {
  /** From now on, now() reads `ms` and ticks on from there. */
  set(ms: number): void;
  advance(ms: number): void;
}

export function testClock(startMs = Date.now()): TestClock {
  let offsetMs = startMs - Date.now();
  return {
    now: () => Date.now() + offsetMs,
    set: (ms) => void (offsetMs = ms - Date.now()),
    advance: (ms) => void (offsetMs += ms),
  };
}

/** One second into the next calendar minute: a test then has 59 seconds within one rate-limit window. */
export function startOfNextMinute(nowMs = Date.now()): number {
  return (Math.floor(nowMs / 60_000) + 1) * 60_000 + 1_000;
}
