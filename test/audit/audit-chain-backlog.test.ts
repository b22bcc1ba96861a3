/** The background linker keeps up with any backlog, a batch at a time. */
import { describe, expect, it } from '@jest/globals';
import { LINK_BATCH_SIZE, linkBacklog, verifyAuditChain } from '../../server/src/audit/audit-chain.js';
import { platformOrgId } from '../../server/src/tenancy/organization-store.js';
import { useMigratedDatabase } from '../support/database.js';

describe('linkBacklog', () => {
  const database = useMigratedDatabase();

  const append = async (count: number) => {
    const orgId = await platformOrgId(database().knex);
    await database().knex('audit_events').insert(
      Array.from({ length: count }, (_, i) => ({ type: 'token.issued', org_id: orgId, actor: 'agent:test', data: JSON.stringify({ i }) })),
    );
  };

  it('links a backlog of several batches in one pass, in order, and the chain verifies', async () => {
    const backlog = 3 * LINK_BATCH_SIZE + 7;
    await append(backlog);
    expect(await linkBacklog(database().knex)).toBe(backlog);
    expect(await linkBacklog(database().knex)).toBe(0);
    expect(await verifyAuditChain(database().knex)).toMatchObject({ valid: true, checked: backlog, headSeq: backlog });
  });

  it('links a row that commits late with a lower id in the same pass, after the rows linked before it', async () => {
    const orgId = await platformOrgId(database().knex);
    const row = (id: number) => ({ id, type: 'token.issued', org_id: orgId, actor: 'agent:test', data: JSON.stringify({ id }) });
    // Ids from 1,000,000 up, then, once the first batch is linked, id 999,999: behind the pass's cursor.
    await database().knex('audit_events').insert(Array.from({ length: 2 * LINK_BATCH_SIZE + 3 }, (_, i) => row(1_000_000 + i)));
    let isLateRowIn = false;
    const shouldStop = async () => {
      if (!isLateRowIn) await database().knex('audit_events').insert(row(999_999));
      isLateRowIn = true;
      return false;
    };
    expect(await linkBacklog(database().knex, { shouldStop })).toBe(2 * LINK_BATCH_SIZE + 4);
    const late = await database().knex('audit_events').where({ id: 999_999 }).first('chain_seq');
    const before = await database().knex('audit_events').where('id', '>=', 1_000_000).max('chain_seq as seq').first();
    expect(Number(late.chain_seq)).toBe(Number(before?.seq) + 1);
    expect(await verifyAuditChain(database().knex)).toMatchObject({ valid: true });
  });

  it('stops after the batch in hand when asked to', async () => {
    await append(2 * LINK_BATCH_SIZE);
    expect(await linkBacklog(database().knex, { shouldStop: () => true })).toBe(LINK_BATCH_SIZE);
    expect(await linkBacklog(database().knex)).toBe(LINK_BATCH_SIZE);
  });
});
