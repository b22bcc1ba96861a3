/**
 * A BRIN index on audit_events.created_at, for reads of a recent window (GET /api/v1/stats
 * counts the last 24 hours). The table is append-only and created_at follows the insertion
 * order, so each range of pages covers a narrow span of time and the index stays a few
 * pages for millions of rows. Unlike a B-tree it adds next to nothing to an insert (every
 * token grant writes a row): new rows land in the last range, which is not summarised yet
 * (a read scans it whole) until autovacuum summarises it once it is full (autosummarize).
 * Building the index reads the table once, without a sort, under a SHARE lock: grants
 * wait for it.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create index audit_events_created_brin on audit_events using brin (created_at) with (autosummarize = on)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop index audit_events_created_brin`);
}
