/**
 * Federation: external issuers (partners) whose tokens may act for agents (bindings),
 * through RFC 8693 token exchange and the RFC 7523 JWT bearer grant on POST /token.
 *
 * - `federation_partners`: an issuer (not unique: a shared issuer such as Buildkite's is one
 *   partner per customer, told apart by `required_claims`), where its keys come from
 *   (discovery when neither `jwks_uri` nor `keys` is set), what its tokens must carry, and
 *   the organizations that may bind agents to it.
 * - `federation_bindings`: one partner, one agent, the conditions its tokens must meet.
 * - `access_tokens.binding_id`: the binding a federated token came through; deleting the
 *   binding revokes the token, and a token whose binding is gone is inactive (as for trust
 *   policies). issue_grants takes the binding as one more argument: its gate requires it to
 *   exist for the agent with its partner active, so a grant racing a deletion or suspension
 *   records nothing, or a token the token-state lookup then finds inactive.
 */
import type { Knex } from 'knex';
import { issueGrantsSql } from './20261202090000_organizations.js';

const PREVIOUS_SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[])`;
const SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[], uuid[])`;

const nowMs = (knex: Knex) => knex.raw(`date_trunc('milliseconds', now())`);

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('federation_partners', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable();
    t.text('preset').notNullable();
    t.text('issuer').notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.text('jwks_uri');
    t.jsonb('keys');
    t.specificType('audiences', 'text[]').notNullable();
    t.specificType('algorithms', 'text[]').notNullable();
    t.integer('max_token_age_seconds').notNullable();
    t.boolean('single_use_jti').notNullable();
    t.jsonb('required_claims').notNullable();
    t.specificType('org_ids', 'uuid[]').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
  });
  await knex.raw(`alter table federation_partners add constraint federation_partners_status_check check (status in ('active','suspended'))`);
  await knex.raw(`alter table federation_partners add constraint federation_partners_one_key_source check (jwks_uri is null or keys is null)`);
  await knex.raw(`create index federation_partners_by_issuer on federation_partners (issuer)`);

  await knex.schema.createTable('federation_bindings', (t) => {
    t.uuid('id').primary();
    t.uuid('org_id').notNullable().references('organizations.id');
    t.uuid('partner_id').notNullable().references('federation_partners.id');
    t.uuid('agent_id').notNullable().references('agents.id');
    t.jsonb('conditions').notNullable();
    t.specificType('scopes', 'text[]');
    t.integer('max_ttl_seconds');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
  });
  await knex.raw(`create index federation_bindings_by_agent on federation_bindings (agent_id, partner_id)`);
  await knex.raw(`create index federation_bindings_by_org on federation_bindings (org_id, id)`);
  await knex.raw(`create index federation_bindings_by_partner on federation_bindings (partner_id)`);

  await knex.schema.alterTable('access_tokens', (t) => t.uuid('binding_id'));
  await knex.raw(`create index access_tokens_live_by_binding on access_tokens (binding_id) where revoked_at is null and binding_id is not null`);
  await knex.raw(`drop function if exists ${PREVIOUS_SIGNATURE}`);
  await knex.raw(issueGrantsSql({ withBindings: true }));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop function if exists ${SIGNATURE}`);
  await knex.raw(issueGrantsSql({ withBindings: false }));
  await knex.raw(`drop index access_tokens_live_by_binding`);
  await knex.schema.alterTable('access_tokens', (t) => t.dropColumn('binding_id'));
  await knex.schema.dropTable('federation_bindings');
  await knex.schema.dropTable('federation_partners');
}
