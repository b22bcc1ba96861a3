/**
 * Per-client_id rate limits on the token endpoints: fixed one-minute windows, counted in
 * the database (oauth/rate-limit-store.ts, and issue_grants for grants) so that every
 * instance sharing it sees one exact count. Failed client authentications have windows
 * of their own (oauth/client-credentials-grant.ts). The window follows the injected clock.
 */
import { RateLimited } from '../errors.js';

export interface RateLimitState {
  readonly limit: number;
  readonly count: number;
  /** Unix seconds at which the window ends. */
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

export function isOverLimit(state: RateLimitState): boolean {
  return state.count > state.limit;
}

export function rateLimitExceeded(state: RateLimitState, nowMs: number): RateLimited {
  const retryAfterSeconds = Math.max(1, state.resetSeconds - Math.floor(nowMs / 1000));
  return new RateLimited({ ...rateLimitHeaders(state), 'Retry-After': String(retryAfterSeconds) });
}
