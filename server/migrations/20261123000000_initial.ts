/**
 * The initial schema: agents and their credentials, issued access tokens (for
 * revocation and introspection), rate-limit and quota counters, the audit chain,
 * signing keys, GitHub trust policies and the single-use register of GitHub ID tokens.
 */
import type { Knex } from 'knex';

// Timestamps at millisecond precision, as the API shows them, so that keyset cursors
// built from them compare exactly.
const nowMs = (knex: Knex) => knex.raw(`date_trunc('milliseconds', now())`);

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('agents', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable();
    t.text('description');
    // active → suspended ↔ active; decommissioned is final.
    t.text('status').notNullable().defaultTo('active');
    t.specificType('scopes', 'text[]').notNullable();
    // Agents made by /oidc/register belong to the repository (by GitHub's numeric id) that made them.
    t.text('registered_repository_id');
    t.text('registered_repository');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
  });
  await knex.raw(`alter table agents add constraint agents_status_check check (status in ('active','suspended','decommissioned'))`);
  // register-agent is idempotent per repository id and agent name.
  await knex.raw(
    `create unique index agents_registered_name on agents (registered_repository_id, name) where registered_repository_id is not null`,
  );

  await knex.schema.createTable('credentials', (t) => {
    t.uuid('id').primary();
    t.uuid('agent_id').notNullable().references('agents.id');
    // SHA-256 of a 256-bit random secret: a fast hash is right for high-entropy secrets.
    t.binary('secret_hash').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
    t.timestamp('revoked_at', { useTz: true });
  });
  await knex.raw(`create index credentials_live on credentials (agent_id) where revoked_at is null`);

  await knex.schema.createTable('access_tokens', (t) => {
    t.uuid('jti').primary();
    t.uuid('agent_id').notNullable().references('agents.id');
    // The credential that obtained it: revoking the credential revokes its live tokens.
    t.uuid('credential_id');
    t.text('grant_type').notNullable();
    t.text('scope').notNullable();
    t.timestamp('issued_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true });
  });
  await knex.raw(`create index access_tokens_live_by_agent on access_tokens (agent_id) where revoked_at is null`);
  await knex.raw(`create index access_tokens_expiry on access_tokens (expires_at)`);
  await knex.raw(`create index access_tokens_live_by_credential on access_tokens (credential_id) where revoked_at is null`);

  // Fixed one-minute windows per client_id; rows of past windows are pruned.
  await knex.schema.createTable('rate_limit_windows', (t) => {
    t.text('client_id').notNullable();
    t.bigInteger('window_start').notNullable();
    t.integer('count').notNullable();
    t.primary(['client_id', 'window_start']);
  });
  // Grants per agent per calendar month (UTC), e.g. month = '2026-11'.
  await knex.schema.createTable('token_quotas', (t) => {
    t.uuid('agent_id').notNullable();
    t.text('month').notNullable();
    t.integer('count').notNullable();
    t.primary(['agent_id', 'month']);
  });

  // Rows are appended unlinked; the chain linker later gives each a chain_seq, prev_hash
  // and hash in one ordered pass, keeping the hash chain off the request path.
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.text('type').notNullable();
    t.uuid('agent_id');
    t.text('actor').notNullable();
    t.jsonb('data').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
    t.bigInteger('chain_seq').unique();
    t.text('prev_hash');
    t.text('hash');
  });
  await knex.raw(`create index audit_events_unlinked on audit_events (id) where chain_seq is null`);
  await knex.raw(`create index audit_events_by_agent on audit_events (agent_id, id)`);
  await knex.raw(`create index audit_events_by_type on audit_events (type, id)`);

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.jsonb('private_jwk').notNullable();
    t.jsonb('public_jwk').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
    // Set when a newer key takes over; the key stays published until its last token expires.
    t.timestamp('retired_at', { useTz: true });
  });

  await knex.schema.createTable('trust_policies', (t) => {
    t.uuid('id').primary();
    t.text('provider').notNullable();
    t.text('repository').notNullable();
    // Null: a registration policy, which lets matching workflows call /oidc/register.
    t.uuid('agent_id').references('agents.id');
    t.text('branch');
    t.text('environment');
    t.text('workflow_ref');
    t.text('job_workflow_ref');
    // Bound on the first successful exchange when not given, enforced from then on.
    t.text('repository_id');
    t.text('repository_owner_id');
    t.specificType('allowed_events', 'text[]').notNullable().defaultTo('{}');
    t.specificType('scopes', 'text[]');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
  });
  // ASCII-only case folding (GitHub's rule), independent of the database's locale.
  await knex.raw(
    `create index trust_policies_by_repository on trust_policies (translate(repository, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'))`,
  );
  await knex.raw(`create index trust_policies_by_agent on trust_policies (agent_id)`);

  // A GitHub ID token's jti is accepted once; rows are pruned after the token expires.
  await knex.schema.createTable('github_used_jtis', (t) => {
    t.text('jti').primary();
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'github_used_jtis',
    'trust_policies',
    'signing_keys',
    'audit_events',
    'token_quotas',
    'rate_limit_windows',
    'access_tokens',
    'credentials',
    'agents',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
