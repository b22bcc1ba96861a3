/**
 * The fan-out runs every few hundred milliseconds on every instance, webhooks or not: each
 * pass must read the chain from its cursor on, not the whole chain, or its cost grows with
 * the audit log until it competes with the grants (bench/README.md, target 1).
 */
import crypto from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { fanOut } from '../../server/src/webhooks/webhook-queue.js';
import { useMigratedDatabase } from '../support/database.js';

const CHAIN = 3000;

describe('the webhook fan-out', () => {
  const database = useMigratedDatabase();

  it('reads only the events past its cursor, however long the chain', async () => {
    const { knex } = database();
    const orgId = (await knex('organizations').where({ is_platform: true }).first('id')).id as string;
    const rows = Array.from({ length: CHAIN }, (_, i) => ({
      type: 'agent.created',
      actor: 'test',
      org_id: orgId,
      data: { i },
      chain_seq: i + 1,
      prev_hash: crypto.randomBytes(32).toString('hex'),
      hash: crypto.randomBytes(32).toString('hex'),
    }));
    for (let i = 0; i < rows.length; i += 500) await knex('audit_events').insert(rows.slice(i, i + 500));
    await knex.raw('analyze audit_events');
    await knex('webhook_fanout').where({ id: 1 }).update({ last_seq: CHAIN - 10 });

    await knex.transaction(async (trx) => {
      expect(await fanOut(trx, Date.now())).toEqual({ examined: 10, queued: 0 });
      // What this transaction read of audit_events, by its heap and by the chain's index.
      const { rows: [read] } = await trx.raw(
        `select pg_stat_get_xact_tuples_returned('audit_events'::regclass)
              + pg_stat_get_xact_tuples_returned('audit_events_chain_seq_unique'::regclass) as n`,
      );
      expect(Number(read.n)).toBeLessThanOrEqual(20);
    });
    expect(Number((await knex('webhook_fanout').where({ id: 1 }).first('last_seq')).last_seq)).toBe(CHAIN);
  });
});
