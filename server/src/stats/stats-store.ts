/**
 * The counts behind an organization's token statistics, read from the audit log (which
 * keeps every grant and refusal) and access_tokens (which holds only unexpired tokens and
 * recent ones). The audit reads name a created_at window, so that PostgreSQL reads the
 * window's pages through the BRIN index (migration 20261206090000) rather than the table.
 */
import type { Knex } from 'knex';
import { ofOrganization } from '../audit/audit-log.js';

type Db = Knex | Knex.Transaction;

/** An organization's part of the audit log; rows from before organizations are the platform's. */
export interface AuditScope {
  readonly orgId: string;
  readonly isPlatform: boolean;
}

export interface TimeWindow {
  readonly from: Date;
  /** Exclusive. */
  readonly until: Date;
}

/** The types of the audit events that record a refused exchange or registration, each with `data.reason`. */
export const REFUSAL_EVENT_TYPES = ['oidc.exchange.refused', 'oidc.register.refused', 'oidc.unverified_refused', 'federation.exchange.refused'] as const;

/** One row of oidc.unverified_refused stands for `data.count` refusals of a minute (github/unverified-refusals.ts). */
const SUMMARY_TYPE = 'oidc.unverified_refused';

/** The most (type, reason) groups answered: a reason can quote a ref or a scope, so there may be many. */
export const MAX_REFUSAL_GROUPS = 100;

export interface RefusalGroup {
  readonly type: string;
  readonly reason: string | null;
  readonly count: number;
}

function auditRowsOf(db: Db, scope: AuditScope, window: TimeWindow): Knex.QueryBuilder {
  return db('audit_events')
    .where('created_at', '>=', window.from)
    .where('created_at', '<', window.until)
    .where(ofOrganization(scope));
}

/** token.issued events per UTC hour of the window, keyed by the hour's start in epoch milliseconds; hours without any are absent. */
export async function countIssuedPerHour(db: Db, scope: AuditScope, window: TimeWindow): Promise<Map<number, number>> {
  const rows: { hour: string | number; count: string | number }[] = await auditRowsOf(db, scope, window)
    .where('type', 'token.issued')
    .groupByRaw('1')
    .select(db.raw('floor(extract(epoch from created_at) / 3600)::bigint as hour'), db.raw('count(*) as count'));
  return new Map(rows.map((row) => [Number(row.hour) * 3_600_000, Number(row.count)]));
}

/** Refusals recorded in the window, by event type and reason, most frequent first. */
export async function countRefusalsByReason(db: Db, scope: AuditScope, window: TimeWindow): Promise<RefusalGroup[]> {
  const rows: { type: string; reason: string | null; count: string | number }[] = await auditRowsOf(db, scope, window)
    .whereIn('type', REFUSAL_EVENT_TYPES)
    .groupBy('type', 'reason')
    .orderBy([{ column: 'count', order: 'desc' }, { column: 'type' }, { column: 'reason' }])
    .limit(MAX_REFUSAL_GROUPS)
    .select(
      'type',
      db.raw(`data->>'reason' as reason`),
      db.raw(`sum(case when type = ? and jsonb_typeof(data->'count') = 'number' then (data->>'count')::numeric else 1 end) as count`, [SUMMARY_TYPE]),
    );
  return rows.map((row) => ({ type: row.type, reason: row.reason, count: Number(row.count) }));
}

/** Tokens of the organization's agents that are neither revoked nor expired at `now`. */
export async function countLiveTokens(db: Db, orgId: string, now: Date): Promise<number> {
  const row = await db('access_tokens as t')
    .join('agents as a', 'a.id', 't.agent_id')
    .where('a.org_id', orgId)
    .whereNull('t.revoked_at')
    .where('t.expires_at', '>', now)
    .first(db.raw('count(*) as count'));
  return Number((row as { count: string | number } | undefined)?.count ?? 0);
}
