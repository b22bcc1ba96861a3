/**
 * Webhooks (Standard Webhooks): security events pushed to an organization's endpoints.
 *
 * - `webhook_endpoints`: an organization's receiver: URL, the event types it takes, its
 *   signing secret (sealed with the key-encryption key, the endpoint id as associated data;
 *   `secret_kek_id` null: stored in clear, as signing keys are without a KEK) and, during a
 *   rotation's grace period, the previous one. `failing_since`: the first failure since the
 *   last success (five days of it disable the endpoint).
 * - The outbox is the audit log itself: every change writes its audit row in its own
 *   transaction, so a committed change always has its event and a rolled-back one never.
 *   `webhook_fanout` is the cursor of the fan-out: the last audit chain sequence turned into
 *   deliveries. Fan-out reads linked events only, so every delivery knows its event's place
 *   in the chain; it starts after the events that exist now (no history is delivered).
 * - `webhook_deliveries`: one event for one endpoint (an audit event, or with its own
 *   payload an event kept out of the chain: `audit.chain_broken`), retried until it succeeds or its
 *   schedule ends; a worker leases a delivery by moving `next_attempt_at` past its timeout,
 *   so a delivery taken by a dead worker is due again when the lease ends.
 * - `webhook_attempts`: each attempt: time, status code, duration, the first 1 KiB of the
 *   answer. Deliveries and attempts are kept 30 days.
 */
import type { Knex } from 'knex';

const nowMs = (knex: Knex) => knex.raw(`date_trunc('milliseconds', now())`);

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.uuid('id').primary();
    t.uuid('org_id').notNullable().references('organizations.id');
    t.text('url').notNullable();
    t.text('description');
    t.specificType('event_types', 'text[]').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.text('disabled_reason');
    t.binary('secret').notNullable();
    t.text('secret_kek_id');
    t.binary('previous_secret');
    t.text('previous_secret_kek_id');
    t.timestamp('previous_secret_expires_at', { useTz: true });
    t.timestamp('failing_since', { useTz: true });
    t.timestamp('last_success_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(nowMs(knex));
  });
  await knex.raw(`create index webhook_endpoints_by_org on webhook_endpoints (org_id, id)`);

  await knex.schema.createTable('webhook_fanout', (t) => {
    t.smallint('id').primary();
    t.bigInteger('last_seq').notNullable();
  });
  await knex.raw(`alter table webhook_fanout add constraint webhook_fanout_one_row check (id = 1)`);
  await knex.raw(`insert into webhook_fanout (id, last_seq) select 1, coalesce(max(chain_seq), 0) from audit_events`);

  await knex.schema.createTable('webhook_deliveries', (t) => {
    // In the order they were queued: a history reads newest first by id.
    t.bigIncrements('id').primary();
    t.uuid('org_id').notNullable();
    t.uuid('endpoint_id').notNullable().references('webhook_endpoints.id').onDelete('CASCADE');
    // `webhook-id`: msg_<audit event id>, the same for every endpoint, retry and redelivery.
    t.text('message_id').notNullable();
    // Null for an event that is not an audit event (audit.chain_broken: not appended to the
    // chain it reports on), whose body is then `payload`, as sent.
    t.bigInteger('audit_event_id');
    t.text('payload');
    t.text('event_type').notNullable();
    t.text('status').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true });
    t.integer('last_status_code');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.unique(['endpoint_id', 'message_id']);
  });
  await knex.raw(`alter table webhook_deliveries add constraint webhook_deliveries_status_check check (status in ('pending', 'succeeded', 'failed'))`);
  await knex.raw(`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'`);
  await knex.raw(`create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, id)`);
  await knex.raw(`create index webhook_deliveries_by_age on webhook_deliveries (updated_at)`);

  await knex.schema.createTable('webhook_attempts', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('delivery_id').notNullable().references('webhook_deliveries.id').onDelete('CASCADE');
    t.timestamp('attempted_at', { useTz: true }).notNullable();
    t.integer('status_code');
    t.integer('duration_ms').notNullable();
    t.text('response_body').notNullable();
    t.text('error');
  });
  await knex.raw(`create index webhook_attempts_by_delivery on webhook_attempts (delivery_id, id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webhook_attempts');
  await knex.schema.dropTable('webhook_deliveries');
  await knex.schema.dropTable('webhook_fanout');
  await knex.schema.dropTable('webhook_endpoints');
}
