/**
 * A federated grant reads its partner, verifies the token against that configuration, then
 * issues. A change of the partner committed in between (a tighter `requiredClaims`, another
 * audience, a removed key) must not let that token through: `federation_partners.revision`
 * counts the partner's changes, the grant passes the revision it verified against, and
 * issue_grants' gate requires it to be current, with the partner row share-locked until the
 * grant commits. So a change either waits for the grant and then revokes its token with the
 * partner's others, or comes first and the grant is refused at the gate.
 */
import type { Knex } from 'knex';
import { issueGrantsSql } from './20261202090000_organizations.js';

const PREVIOUS_SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[], uuid[])`;
const SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[], uuid[], int[])`;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('federation_partners', (t) => t.integer('revision').notNullable().defaultTo(1));
  await knex.raw(`drop function if exists ${PREVIOUS_SIGNATURE}`);
  await knex.raw(issueGrantsSql({ withBindings: true, withPartnerRevision: true }));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop function if exists ${SIGNATURE}`);
  await knex.raw(issueGrantsSql({ withBindings: true }));
  await knex.schema.alterTable('federation_partners', (t) => t.dropColumn('revision'));
}
