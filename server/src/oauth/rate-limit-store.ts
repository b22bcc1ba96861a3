/** The rate-limit windows table: counting a request, and forgetting windows that are over. */
import type { Knex } from 'knex';
import type { RunPrepared } from '../storage/prepared.js';
import { currentWindow, isOverLimit, rateLimitExceeded, type RateLimitState } from './rate-limit.js';

const COUNT_REQUEST_SQL = `insert into rate_limit_windows as w (client_id, window_start, count) values ($1, $2, 1)
  on conflict (client_id, window_start) do update set count = w.count + 1 returning w.count`;

/** Counts one request of `clientId` at `nowMs`; throws 429 past the limit. Undefined when limits are off. */
export async function countRequest(
  query: RunPrepared,
  clientId: string,
  limitPerMinute: number,
  nowMs: number,
): Promise<RateLimitState | undefined> {
  if (limitPerMinute === 0) return undefined;
  const { windowStart, resetSeconds } = currentWindow(nowMs);
  const [row] = await query<{ count: number }>('count_request', COUNT_REQUEST_SQL, [clientId, windowStart]);
  const state = { limit: limitPerMinute, count: Number(row.count), resetSeconds };
  if (isOverLimit(state)) throw rateLimitExceeded(state, nowMs);
  return state;
}

/** Windows before the previous minute can no longer matter. */
export async function pruneRateWindows(trx: Knex.Transaction, nowMs: number): Promise<void> {
  await trx('rate_limit_windows').where('window_start', '<', currentWindow(nowMs).windowStart - 1).delete();
}
