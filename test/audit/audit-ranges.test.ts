/**
 * The audit log's BRIN index on created_at (migration 20261206090000): page ranges filled
 * after it was built are summarised by summarizeAuditRanges (the embedded database's
 * maintenance job; autovacuum on PostgreSQL), once, and a windowed count then reads the
 * window's ranges.
 */
import { describe, expect, it } from '@jest/globals';
import { summarizeAuditRanges } from '../../server/src/audit/audit-log.js';
import { countIssuedPerHour } from '../../server/src/stats/stats-store.js';
import { platformOrgId } from '../../server/src/tenancy/organization-store.js';
import { useMigratedDatabase } from '../support/database.js';

const HOUR = 3_600_000;

describe('summarizeAuditRanges', () => {
  const database = useMigratedDatabase();

  it('summarises the ranges filled since the last call, once, and leaves the counts as they were', async () => {
    const { knex } = database();
    const orgId = await platformOrgId(knex);
    const start = Math.floor(Date.now() / HOUR) * HOUR - 48 * HOUR;
    // Enough rows for several 128-page ranges, an hour apart in insertion order, as the log grows.
    await knex.raw(
      `insert into audit_events (type, org_id, actor, data, created_at)
         select 'token.issued', ?, 'agent:test', jsonb_build_object('padding', repeat('x', 200)), to_timestamp((?::bigint + (i / 1000) * ?::bigint) / 1000.0)
         from generate_series(0, 47999) i`,
      [orgId, start, HOUR],
    );
    const window = { from: new Date(start + 10 * HOUR), until: new Date(start + 12 * HOUR) };
    const before = await countIssuedPerHour(knex, { orgId, isPlatform: true }, window);

    expect(await summarizeAuditRanges(knex)).toBeGreaterThan(1);
    expect(await summarizeAuditRanges(knex)).toBe(0);
    const after = await countIssuedPerHour(knex, { orgId, isPlatform: true }, window);
    expect([...after]).toEqual([...before]);
    expect([...after]).toEqual([
      [start + 10 * HOUR, 1000],
      [start + 11 * HOUR, 1000],
    ]);
  });
});
