/**
 * A trust policy may name a tag (`refs/tags/<tag>`, exactly or by glob) instead of a branch,
 * for release workflows. A policy names one or the other, never both.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table trust_policies add column tag text`);
  await knex.raw(`alter table trust_policies add constraint trust_policy_branch_or_tag check (branch is null or tag is null)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table trust_policies drop column tag`);
}
