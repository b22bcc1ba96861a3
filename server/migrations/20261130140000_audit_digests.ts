/**
 * Signed digests of the audit chain (audit/audit-digests.ts): each names the chain's
 * head at the time and the hash of the digest before it, signed with the active signing
 * key. A copy kept outside the database (the server also logs each one) shows whether
 * the chain was truncated or rewritten since.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_digests', (t) => {
    // 1, 2, 3…: the digest chain's own order.
    t.bigInteger('seq').primary();
    t.bigInteger('first_seq').notNullable();
    t.bigInteger('last_seq').notNullable();
    t.integer('count').notNullable();
    t.text('head_hash').notNullable();
    t.text('previous_digest_hash').notNullable();
    // The compact JWS itself, byte for byte: what was signed and logged.
    t.text('jws').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_digests');
}
