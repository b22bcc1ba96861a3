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

  it('stops after the batch in hand when asked to', async () => {
    await append(2 * LINK_BATCH_SIZE);
    expect(await linkBacklog(database().knex, { shouldStop: () => true })).toBe(LINK_BATCH_SIZE);
    expect(await linkBacklog(database().knex)).toBe(LINK_BATCH_SIZE);
  });
});
