/**
 * A GitHub exchange or a single-use federated grant spent its token's jti in a statement of
 * its own, then issued the token in issue_grants: two commits per batch. issue_grants now
 * spends the jti itself (`p_used_jti`, `p_used_jti_exp`; `replay` refuses a spent one), so the
 * exchange reads its agent and policies without writing and commits once. The new arguments
 * default to null: calls without them are the previous function's.
 */
import type { Knex } from 'knex';
import { issueGrantsSql } from './20261202090000_organizations.js';

const PREVIOUS_SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[], uuid[], int[])`;
const SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[], uuid[], int[], text[], float8[])`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`drop function if exists ${PREVIOUS_SIGNATURE}`);
  await knex.raw(issueGrantsSql({ withBindings: true, withPartnerRevision: true, withUsedJtis: true }));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop function if exists ${SIGNATURE}`);
  await knex.raw(issueGrantsSql({ withBindings: true, withPartnerRevision: true }));
}
