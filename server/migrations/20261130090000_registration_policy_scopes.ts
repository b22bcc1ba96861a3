/**
 * A registration policy (a trust policy with no agent) names the scopes an agent registered
 * under it may hold. Before, a registration policy without scopes gave such agents none;
 * those rows now say so (`{}`), and a check keeps every new one explicit.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`update trust_policies set scopes = '{}' where agent_id is null and scopes is null`);
  await knex.raw(`alter table trust_policies add constraint registration_policy_names_scopes check (agent_id is not null or scopes is not null)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table trust_policies drop constraint registration_policy_names_scopes`);
}
