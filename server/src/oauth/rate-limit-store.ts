/**
 * The rate-limit windows table: counting a request, counting a failed client
 * authentication, and forgetting windows that are over.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { isUuid } from '../config.js';
import type { RunPrepared } from '../storage/prepared.js';
import { currentWindow, isOverLimit, rateLimitExceeded, type RateLimitState } from './rate-limit.js';

const COUNT_REQUEST_SQL = `insert into rate_limit_windows as w (client_id, window_start, count) values ($1, $2, 1)
  on conflict (client_id, window_start) do update set count = w.count + 1 returning w.count`;

/** Counts one event under `key` at `nowMs`; throws 429 past the limit. Undefined when limits are off. */
async function countInWindow(query: RunPrepared, key: string, limitPerMinute: number, nowMs: number): Promise<RateLimitState | undefined> {
  if (limitPerMinute === 0) return undefined;
  const { windowStart, resetSeconds } = currentWindow(nowMs);
  const [row] = await query<{ count: number }>('count_request', COUNT_REQUEST_SQL, [key, windowStart]);
  const state = { limit: limitPerMinute, count: Number(row.count), resetSeconds };
  if (isOverLimit(state)) throw rateLimitExceeded(state, nowMs);
  return state;
}

/** Counts one request of `clientId` at `nowMs`; throws 429 past the limit. Undefined when limits are off. */
export function countRequest(query: RunPrepared, clientId: string, limitPerMinute: number, nowMs: number): Promise<RateLimitState | undefined> {
  return countInWindow(query, clientId, limitPerMinute, nowMs);
}

/**
 * Failed authentications are counted apart from the client's requests, under a key no
 * agent id can take: a client_id is public, so failures counted against the client's own
 * limit would let anyone lock it out. A UUID counts in lower case (every spelling of an id
 * is one bucket); anything else can never authenticate and counts by its hash, so that
 * what was sent (perhaps a secret in the wrong field) is not stored and the key stays short.
 */
export function failedAuthenticationKey(clientId: string): string {
  return isUuid(clientId)
    ? `failed-auth:${clientId.toLowerCase()}`
    : `failed-auth:sha256:${crypto.createHash('sha256').update(clientId, 'utf8').digest('base64url')}`;
}

/** Counts one failed authentication of `clientId`; throws 429 past the limit. Undefined when limits are off. */
export function countFailedAuthentication(
  query: RunPrepared,
  clientId: string,
  limitPerMinute: number,
  nowMs: number,
): Promise<RateLimitState | undefined> {
  return countInWindow(query, failedAuthenticationKey(clientId), limitPerMinute, nowMs);
}

/** Windows before the previous minute can no longer matter. */
export async function pruneRateWindows(trx: Knex.Transaction, nowMs: number): Promise<void> {
  await trx('rate_limit_windows').where('window_start', '<', currentWindow(nowMs).windowStart - 1).delete();
}
