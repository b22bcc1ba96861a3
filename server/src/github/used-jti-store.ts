/** Spent GitHub ID tokens, remembered by issuer and jti until they expire (single use). */
import type { Knex } from 'knex';
import type { RunPrepared } from '../storage/prepared.js';

const SPEND_JTI = `insert into github_used_jtis (jti, expires_at) values ($1, to_timestamp($2)) on conflict (jti) do nothing returning 1`;

/** True when this call spent the jti; false when it was spent before. Atomic on any number of instances. */
export async function spendJti(query: RunPrepared, key: string, expSeconds: number): Promise<boolean> {
  return (await query('oidc_spend_jti', SPEND_JTI, [key, expSeconds])).length > 0;
}

/** An ID token ten minutes past its expiry can no longer pass verification (leeway included). */
export async function pruneUsedJtis(trx: Knex.Transaction, nowMs: number): Promise<void> {
  await trx('github_used_jtis').where('expires_at', '<', new Date(nowMs - 600_000)).delete();
}
