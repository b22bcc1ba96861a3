/**
 * Per-client_id rate limiting on the token endpoints: fixed one-minute windows counted
 * in the database, so every instance sharing it sees one exact count.
 */
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { ApiError } from './errors.js';

export interface RateLimitState {
  readonly limit: number;
  readonly count: number;
  readonly resetSeconds: number;
}

export function currentWindow(nowMs: number): { windowStart: number; resetSeconds: number } {
  const windowStart = Math.floor(nowMs / 60_000);
  return { windowStart, resetSeconds: (windowStart + 1) * 60 };
}

export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    'X-RateLimit-Limit': String(state.limit),
    'X-RateLimit-Remaining': String(Math.max(0, state.limit - state.count)),
    'X-RateLimit-Reset': String(state.resetSeconds),
  };
}

export function setRateLimitHeaders(ctx: Context, state: RateLimitState | undefined): void {
  if (state) ctx.set(rateLimitHeaders(state));
}

export function isOverLimit(state: RateLimitState): boolean {
  return state.count > state.limit;
}

export function rateLimitExceeded(state: RateLimitState, nowMs = Date.now()): ApiError {
  const retryAfterSeconds = Math.max(1, state.resetSeconds - Math.floor(nowMs / 1000));
  return new ApiError(
    429,
    'RATE_LIMIT_EXCEEDED',
    'Too many requests. Please retry after the rate limit window resets.',
    undefined,
    { ...rateLimitHeaders(state), 'Retry-After': String(retryAfterSeconds) },
  );
}

/** Counts one request of `clientId`; throws 429 past the limit. Undefined when limits are off. */
export async function countRequest(knex: Knex, clientId: string, limitPerMinute: number): Promise<RateLimitState | undefined> {
  if (limitPerMinute === 0) return undefined;
  const { windowStart, resetSeconds } = currentWindow(Date.now());
  const result = await knex.raw(
    `insert into rate_limit_windows as w (client_id, window_start, count) values (?, ?, 1)
     on conflict (client_id, window_start) do update set count = w.count + 1 returning w.count`,
    [clientId, windowStart],
  );
  const state = { limit: limitPerMinute, count: Number(result.rows[0].count), resetSeconds };
  if (isOverLimit(state)) throw rateLimitExceeded(state);
  return state;
}
