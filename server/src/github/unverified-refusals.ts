/**
 * ID tokens refused before their signature was verified could come from anyone and name
 * any agent, so they write nothing about an agent (issue 13, finding 4). Each is counted
 * in the rate-limit windows table under keys of its own, in one statement:
 *   `oidc-unverified`                        every such refusal, for the overall limit;
 *   `oidc-unverified:agent:<agentId>`        those naming one agent, for its limit;
 *   `oidc-unverified:reason:<endpoint>:<r>`  per reason, summarized into the audit log.
 * Past a limit the refusal is answered 429 instead of 400. A token whose signature verifies
 * never reaches this code, so junk cannot lock a victim's workflows out. Once a minute is
 * over, the maintenance job turns each reason's count into one platform-level audit row
 * (no agent) and forgets it.
 */
import type { Knex } from 'knex';
import { appendAuditEvent } from '../audit/audit-log.js';
import { currentWindow, isOverLimit, rateLimitExceeded, type RateLimitState } from '../oauth/rate-limit.js';
import type { RunPrepared } from '../storage/prepared.js';
import type { IdTokenRejection } from './verify-id-token.js';

/** Where an unverified token was refused: the GitHub endpoints, or a federated grant of POST /token. */
export type GitHubEndpoint = 'exchange' | 'register' | 'token_exchange' | 'jwt_bearer';

/** The overall limit, as a multiple of RATE_LIMIT_PER_MINUTE (the limit per agent named). */
export const UNVERIFIED_OVERALL_FACTOR = 10;

const OVERALL_KEY = 'oidc-unverified';
const AGENT_PREFIX = 'oidc-unverified:agent:';
const REASON_PREFIX = 'oidc-unverified:reason:';

// Keys in one order, so that concurrent statements lock the rows in the same order.
const COUNT_SQL = `insert into rate_limit_windows as w (client_id, window_start, count)
    select key, $2::bigint, 1 from unnest($1::text[]) as k(key) order by key
  on conflict (client_id, window_start) do update set count = w.count + 1
  returning w.client_id, w.count`;

export interface UnverifiedRefusal {
  readonly endpoint: GitHubEndpoint;
  readonly reason: IdTokenRejection;
  /** The agent the request named (exchange), if any: a stranger's claim, never audited. */
  readonly agentId: string | null;
}

/**
 * Counts one refusal; throws 429 RATE_LIMIT_EXCEEDED when it is past the overall limit or
 * that of the agent it names (`limitPerMinute` 0: no limit, only the count).
 */
export async function countUnverifiedRefusal(query: RunPrepared, refusal: UnverifiedRefusal, limitPerMinute: number, nowMs: number): Promise<void> {
  const { windowStart, resetSeconds } = currentWindow(nowMs);
  const keys = [`${REASON_PREFIX}${refusal.endpoint}:${refusal.reason}`];
  if (limitPerMinute > 0) {
    keys.push(OVERALL_KEY);
    if (refusal.agentId !== null) keys.push(`${AGENT_PREFIX}${refusal.agentId}`);
  }
  const rows = await query<{ client_id: string; count: number }>('count_unverified_refusal', COUNT_SQL, [keys, windowStart]);
  const states: RateLimitState[] = rows
    .filter((row) => !row.client_id.startsWith(REASON_PREFIX))
    .map((row) => ({
      limit: row.client_id === OVERALL_KEY ? limitPerMinute * UNVERIFIED_OVERALL_FACTOR : limitPerMinute,
      count: Number(row.count),
      resetSeconds,
    }));
  const exceeded = states.find(isOverLimit);
  if (exceeded) throw rateLimitExceeded(exceeded, nowMs);
}

/**
 * One audit row per endpoint, reason and finished minute, with its count, attributed to no
 * agent; the counts are then forgotten. Runs under the maintenance lock, before the
 * windows are pruned.
 */
export async function summarizeUnverifiedRefusals(trx: Knex.Transaction, nowMs: number): Promise<number> {
  const rows: { client_id: string; window_start: string | number; count: number }[] = await trx('rate_limit_windows')
    .where('client_id', 'like', `${REASON_PREFIX}%`)
    .where('window_start', '<', currentWindow(nowMs).windowStart)
    .delete()
    .returning(['client_id', 'window_start', 'count']);
  rows.sort((a, b) => Number(a.window_start) - Number(b.window_start) || a.client_id.localeCompare(b.client_id));
  for (const row of rows) {
    const [endpoint, reason] = row.client_id.slice(REASON_PREFIX.length).split(':');
    await appendAuditEvent(trx, {
      type: 'oidc.unverified_refused',
      agentId: null,
      actor: 'github:unverified',
      data: { endpoint, reason, count: Number(row.count), minute: new Date(Number(row.window_start) * 60_000).toISOString() },
    });
  }
  return rows.length;
}
