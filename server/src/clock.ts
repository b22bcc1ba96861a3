/**
 * The time source, injected (AppDeps, services, stores) so that tests move time instead of
 * waiting for it. SQL that depends on a window or an expiry gets the instant as a parameter.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/** Whole seconds since the epoch: what JWT claims and rate-limit headers count in. */
export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);
