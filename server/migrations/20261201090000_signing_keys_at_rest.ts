/**
 * Signing keys encrypted at rest, and withdrawn at once.
 * - A private key is stored either in clear (`private_jwk`, as before; only when the server
 *   runs without KEY_ENCRYPTION_KEY) or sealed (`sealed_private_key`, AES-256-GCM under the
 *   key-encryption key named by `kek_id`; keys/key-encryption.ts), or not at all: a key
 *   retired because it was once stored in clear, or revoked, keeps only its public part.
 * - `revoked_at`: `sentryagent-idp keys revoke` withdrew the key; every token it signed is
 *   inactive from then on (the token-state lookup reads it), and it leaves the JWKS.
 *
 * down() goes back to a schema where every key has a clear private key and none is revoked:
 * the keys the old code cannot use (sealed, erased or revoked) are deleted, so their tokens
 * stop verifying, and the old code makes a new active key at its start.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table signing_keys alter column private_jwk drop not null`);
  await knex.schema.alterTable('signing_keys', (t) => {
    t.binary('sealed_private_key');
    t.text('kek_id');
    t.timestamp('revoked_at', { useTz: true });
  });
  await knex.raw(`alter table signing_keys add constraint signing_keys_sealed_with_kek check ((sealed_private_key is null) = (kek_id is null))`);
  await knex.raw(`alter table signing_keys add constraint signing_keys_one_private_form check (private_jwk is null or sealed_private_key is null)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex('signing_keys').whereNull('private_jwk').orWhereNotNull('revoked_at').delete();
  await knex.raw(`alter table signing_keys drop constraint signing_keys_one_private_form`);
  await knex.raw(`alter table signing_keys drop constraint signing_keys_sealed_with_kek`);
  await knex.schema.alterTable('signing_keys', (t) => {
    t.dropColumn('revoked_at');
    t.dropColumn('kek_id');
    t.dropColumn('sealed_private_key');
  });
  await knex.raw(`alter table signing_keys alter column private_jwk set not null`);
}
