/**
 * When and how long to wait before another attempt. Transient failures (network errors,
 * 408, 429, 5xx) are retried with jittered exponential backoff until a total time budget
 * is spent; a 4xx refusal is final, since asking again cannot change the answer.
 */

export interface RetryPolicy {
  /** Total time budget across all attempts and waits. */
  readonly maxElapsedMs: number;
  /** Upper bound of the first wait; each later wait doubles it, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A server's Retry-After is honoured up to this long. */
  readonly maxRetryAfterMs: number;
  /** One attempt is abandoned (and counted as a network failure) after this long. */
  readonly attemptTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxElapsedMs: 60_000,
  baseDelayMs: 1_000,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 30_000,
  attemptTimeoutMs: 30_000,
});

function readPositiveInteger(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const parsed = Number(value);
  return parsed > 0 ? parsed : undefined;
}

/**
 * The policy, with two knobs that exist for tests (and for a user whose IdP is slow to
 * come up): SENTRYAGENT_RETRY_MAX_MS (total budget) and SENTRYAGENT_RETRY_BASE_MS.
 */
export function readRetryPolicy(
  env: NodeJS.ProcessEnv,
  defaultMaxElapsedMs = DEFAULT_RETRY_POLICY.maxElapsedMs,
): RetryPolicy {
  const maxElapsedMs = readPositiveInteger(env.SENTRYAGENT_RETRY_MAX_MS) ?? defaultMaxElapsedMs;
  const baseDelayMs = readPositiveInteger(env.SENTRYAGENT_RETRY_BASE_MS) ?? DEFAULT_RETRY_POLICY.baseDelayMs;
  return Object.freeze({
    ...DEFAULT_RETRY_POLICY,
    maxElapsedMs,
    baseDelayMs,
    maxDelayMs: Math.max(baseDelayMs, DEFAULT_RETRY_POLICY.maxDelayMs),
    attemptTimeoutMs: Math.min(maxElapsedMs, DEFAULT_RETRY_POLICY.attemptTimeoutMs),
  });
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * "Equal jitter": a wait drawn from the upper half of the exponential step, so waits grow
 * yet clients that failed together do not retry together. `attempt` counts from 1.
 */
export function computeBackoffMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const stepMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(stepMs / 2 + (random() * stepMs) / 2);
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. Unparseable values are ignored. */
export function parseRetryAfterMs(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Every HTTP-date form starts with a day name; Date.parse alone would also read "1.5".
  if (!/^[A-Za-z]{3}/.test(value)) return undefined;
  const dateMs = Date.parse(value);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, dateMs - nowMs);
}

/** The wait before the next attempt: the backoff, or the server's Retry-After if longer (capped). */
export function computeRetryDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  policy: RetryPolicy,
  random: () => number,
): number {
  const backoffMs = computeBackoffMs(attempt, policy, random);
  if (retryAfterMs === undefined) return backoffMs;
  return Math.max(backoffMs, Math.min(retryAfterMs, policy.maxRetryAfterMs));
}
