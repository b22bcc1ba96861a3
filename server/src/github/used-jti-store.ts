/** Spent GitHub ID tokens, remembered by issuer and jti until they expire (single use). */
import type { Knex } from 'knex';
import { Batcher, RETRY_ALONE_UNLESS_UNAVAILABLE } from '../storage/batcher.js';
import type { RunPrepared } from '../storage/prepared.js';

const SPEND_JTI = `insert into github_used_jtis (jti, expires_at) values ($1, to_timestamp($2)) on conflict (jti) do nothing returning 1`;

/** True when this call spent the jti; false when it was spent before. Atomic on any number of instances. */
export async function spendJti(query: RunPrepared, key: string, expSeconds: number): Promise<boolean> {
  return (await query('oidc_spend_jti', SPEND_JTI, [key, expSeconds])).length > 0;
}

// The inputs' keys are distinct (see createJtiSpending), so a key in `spent` was spent by its one row.
// Inserted in jti order, as issue_grants inserts its own: two batches sharing jtis cannot deadlock.
const SPEND_JTIS = `with input as (select * from unnest($1::text[], $2::float8[]) with ordinality as i(jti, exp, ord)),
  spent as (insert into github_used_jtis (jti, expires_at) select jti, to_timestamp(exp) from input order by jti on conflict (jti) do nothing returning jti)
  select i.ord::int as ord from input i join spent s on s.jti = i.jti`;

/**
 * spendJti whose concurrent calls share one statement. Within a batch a key used twice is
 * spent by its first use; the others are replays, as if they had come after it.
 */
export function createJtiSpending(query: RunPrepared): (key: string, expSeconds: number) => Promise<boolean> {
  const batches = new Batcher<{ key: string; exp: number }, boolean>(async (inputs) => {
    const firstUse = new Map<string, number>();
    inputs.forEach((input, index) => firstUse.has(input.key) || firstUse.set(input.key, index));
    const distinct = [...firstUse.values()];
    const rows = await query<{ ord: number }>('spend_jtis', SPEND_JTIS, [
      distinct.map((index) => inputs[index]?.key),
      distinct.map((index) => inputs[index]?.exp),
    ]);
    const spentBy = new Set(rows.map((row) => distinct[row.ord - 1]));
    return inputs.map((_input, index) => spentBy.has(index));
  }, RETRY_ALONE_UNLESS_UNAVAILABLE);
  return (key, expSeconds) => batches.submit({ key, exp: expSeconds });
}

/** An ID token ten minutes past its expiry can no longer pass verification (leeway included). */
export async function pruneUsedJtis(trx: Knex.Transaction, nowMs: number): Promise<void> {
  await trx('github_used_jtis').where('expires_at', '<', new Date(nowMs - 600_000)).delete();
}
