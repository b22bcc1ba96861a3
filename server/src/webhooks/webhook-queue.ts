/**
 * The webhook queue's statements. Fan-out turns linked audit events past the cursor into
 * deliveries (one statement; the cursor row is taken with SKIP LOCKED, so one instance fans
 * out at a time and the others skip). Claiming takes due deliveries with FOR UPDATE SKIP
 * LOCKED and leases them by moving `next_attempt_at` past the attempt's timeout: a delivery
 * is attempted by one instance at a time, and one taken by a worker that died is due again
 * when its lease ends. An outcome is recorded only by the claim that made the attempt (its
 * attempt number), so a late answer cannot overwrite a newer attempt's.
 */
import type { Knex } from 'knex';
import { appendAuditEvent } from '../audit/audit-log.js';
import { FROM_AUDIT, payloadOf, TEST_EVENT, type WebhookEventType } from './event-types.js';
import { failPendingDeliveries, type DisabledReason } from './webhook-store.js';

const AUDIT_TYPES = Object.keys(FROM_AUDIT);
const HOOK_TYPES = AUDIT_TYPES.map((type) => FROM_AUDIT[type] as string);

const FAN_OUT = `
  with cursor as (
    select last_seq from webhook_fanout where id = 1 for update skip locked
  ), events as (
    -- The cursor as a scalar (null when another instance holds it: no events), so that the
    -- chain's index starts at the cursor: joined as a row, it was a filter over the whole chain.
    select e.id, e.chain_seq, e.type, coalesce(e.org_id, (select id from organizations where is_platform)) as org_id
      from audit_events e
     where e.chain_seq > (select last_seq from cursor)
     order by e.chain_seq
     limit ?
  ), queued as (
    insert into webhook_deliveries (org_id, endpoint_id, message_id, audit_event_id, event_type, status, attempts, next_attempt_at, created_at, updated_at)
    select ev.org_id, w.id, 'msg_' || ev.id, ev.id, m.hook_type, 'pending', 0, ?, ?, ?
      from events ev
      join unnest(?::text[], ?::text[]) as m(audit_type, hook_type) on m.audit_type = ev.type
      join webhook_endpoints w on w.org_id = ev.org_id and w.enabled
      join organizations o on o.id = w.org_id and o.status <> 'decommissioned'
     where m.hook_type <> ?                      -- a test is queued for its one endpoint by the test itself
       and (m.hook_type = any(w.event_types)
            or ('*' = any(w.event_types) and m.hook_type <> 'token.issued'))
     order by ev.chain_seq, w.id
    on conflict (endpoint_id, message_id) do nothing
    returning 1
  ), advanced as (
    update webhook_fanout set last_seq = (select max(chain_seq) from events)
     where id = 1 and exists (select 1 from events)
    returning last_seq
  )
  select (select count(*)::int from events) as examined, (select count(*)::int from queued) as queued`;

/**
 * Turns up to `batch` linked audit events into deliveries, due `firstDelayMs` from now;
 * answers how many events it examined.
 */
export async function fanOut(knex: Knex, nowMs: number, { batch = 500, firstDelayMs = 0 } = {}): Promise<{ examined: number; queued: number }> {
  const now = new Date(nowMs);
  const result = await knex.raw(FAN_OUT, [batch, new Date(nowMs + firstDelayMs), now, now, AUDIT_TYPES, HOOK_TYPES, TEST_EVENT]);
  return result.rows[0] as { examined: number; queued: number };
}

// Due deliveries, at most PER_ENDPOINT of each endpoint per claim and none of the endpoints
// this instance already has that many in flight for: one slow receiver cannot take every
// worker and hold up the other organizations' deliveries.
const CLAIM = `
  with candidates as (
    select d.id, row_number() over (partition by d.endpoint_id order by d.next_attempt_at, d.id) as rank
      from webhook_deliveries d
      join webhook_endpoints w on w.id = d.endpoint_id and w.enabled
      left join audit_events e on e.id = d.audit_event_id
     where d.status = 'pending' and d.next_attempt_at <= ?
       -- An audit event is sent once the chain has placed it (its sequence is in the payload).
       and (d.audit_event_id is null or e.chain_seq is not null)
       and d.endpoint_id <> all(?::uuid[])
     order by d.next_attempt_at
     limit 1000
  ), due as (
    select d.id
      from webhook_deliveries d
      join candidates c on c.id = d.id and c.rank <= ?
     where d.status = 'pending' and d.next_attempt_at <= ?
     order by d.next_attempt_at
     limit ?
     for update of d skip locked
  ), claimed as (
    update webhook_deliveries d set next_attempt_at = ?, attempts = d.attempts + 1, updated_at = ?
      from due where d.id = due.id
    returning d.id, d.endpoint_id, d.message_id, d.audit_event_id, d.payload, d.event_type, d.attempts
  )
  select c.id, c.endpoint_id, c.message_id, c.audit_event_id, c.payload, c.event_type, c.attempts,
         w.org_id, w.url, w.secret, w.secret_kek_id, w.previous_secret, w.previous_secret_kek_id, w.previous_secret_expires_at,
         e.chain_seq, e.agent_id, e.actor, e.data, e.created_at as event_created_at
    from claimed c
    join webhook_endpoints w on w.id = c.endpoint_id
    left join audit_events e on e.id = c.audit_event_id`;

/** Deliveries of one endpoint attempted at once, on one instance. */
export const PER_ENDPOINT = 4;

export interface ClaimedDelivery {
  readonly deliveryId: string;
  readonly endpointId: string;
  readonly orgId: string;
  readonly url: string;
  readonly eventType: WebhookEventType;
  /** `webhook-id`. */
  readonly messageId: string;
  /** This attempt's number (1 for the first). */
  readonly attempt: number;
  /** When it was claimed: only this claim may record its outcome. */
  readonly claimedAtMs: number;
  readonly secret: { readonly secret: Buffer; readonly kekId: string | null };
  readonly previousSecret: { readonly secret: Buffer; readonly kekId: string | null; readonly expiresAtMs: number } | null;
  /** The body: the audit event's payload, or the one stored with an event kept out of the chain; the same bytes on every attempt. */
  readonly body: string;
}

interface ClaimRow {
  id: string;
  endpoint_id: string;
  message_id: string;
  audit_event_id: string | null;
  payload: string | null;
  event_type: WebhookEventType;
  attempts: number;
  org_id: string;
  url: string;
  secret: Buffer;
  secret_kek_id: string | null;
  previous_secret: Buffer | null;
  previous_secret_kek_id: string | null;
  previous_secret_expires_at: Date | null;
  chain_seq: string | null;
  agent_id: string | null;
  actor: string | null;
  data: Record<string, unknown> | null;
  event_created_at: Date | null;
}

/** Up to `limit` due deliveries, none of the endpoints `saturated`, leased until `leaseUntilMs`. */
export async function claimDue(knex: Knex, nowMs: number, leaseUntilMs: number, limit: number, saturated: readonly string[] = []): Promise<ClaimedDelivery[]> {
  const now = new Date(nowMs);
  const result = await knex.raw(CLAIM, [now, [...saturated], PER_ENDPOINT, now, limit, new Date(leaseUntilMs), now]);
  return (result.rows as ClaimRow[]).map((row) => ({
    deliveryId: String(row.id),
    endpointId: row.endpoint_id,
    orgId: row.org_id,
    url: row.url,
    eventType: row.event_type,
    messageId: row.message_id,
    attempt: row.attempts,
    claimedAtMs: nowMs,
    secret: { secret: row.secret, kekId: row.secret_kek_id },
    previousSecret:
      row.previous_secret && row.previous_secret_expires_at
        ? { secret: row.previous_secret, kekId: row.previous_secret_kek_id, expiresAtMs: row.previous_secret_expires_at.getTime() }
        : null,
    body:
      row.payload ??
      payloadOf(row.event_type, {
        auditEventId: String(row.audit_event_id),
        chainSeq: Number(row.chain_seq),
        orgId: row.org_id,
        agentId: row.agent_id,
        actor: row.actor as string,
        data: row.data ?? {},
        createdAt: row.event_created_at as Date,
      }),
  }));
}

/**
 * An event of the platform that is not an audit event (`audit.chain_broken`: written to the
 * chain it reports on, it would fill the place of what was deleted), to the platform
 * organization's endpoints that take its type, due now; `messageId` makes it once per
 * endpoint however often it is queued.
 */
export async function queuePlatformEvent(
  knex: Knex,
  event: { readonly type: WebhookEventType; readonly messageId: string; readonly data: Record<string, unknown>; readonly nowMs: number },
): Promise<number> {
  const platform: { id: string } | undefined = await knex('organizations').where({ is_platform: true }).first('id');
  if (!platform) return 0;
  return queueEvent(knex, { ...event, orgId: platform.id });
}

async function queueEvent(
  knex: Knex,
  event: { readonly orgId: string; readonly type: WebhookEventType; readonly messageId: string; readonly data: Record<string, unknown>; readonly nowMs: number },
): Promise<number> {
  const now = new Date(event.nowMs);
  const body = JSON.stringify({ type: event.type, timestamp: now.toISOString(), data: { ...event.data, orgId: event.orgId, actor: 'system' } });
  const result = await knex.raw(
    `insert into webhook_deliveries (org_id, endpoint_id, message_id, payload, event_type, status, attempts, next_attempt_at, created_at, updated_at)
     select w.org_id, w.id, ?, ?, ?, 'pending', 0, ?, ?, ?
       from webhook_endpoints w
      where w.org_id = ? and w.enabled and (? = any(w.event_types) or '*' = any(w.event_types))
     on conflict (endpoint_id, message_id) do nothing`,
    [event.messageId, body, event.type, now, now, now, event.orgId, event.type],
  );
  return result.rowCount ?? 0;
}

export interface AttemptRecord {
  readonly attemptedAtMs: number;
  readonly statusCode: number | null;
  readonly durationMs: number;
  readonly responseBody: string;
  readonly error: string | null;
}

/** What the attempt decided: done, again at a time, given up, or the endpoint is gone (410). */
export type AttemptVerdict =
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'retry'; readonly atMs: number }
  | { readonly kind: 'failed' }
  | { readonly kind: 'gone' };

export interface RecordOptions {
  readonly nowMs: number;
  /** A failing endpoint with no success for this long is disabled. */
  readonly disableAfterMs: number;
}

/**
 * Records the attempt and applies its verdict, in one transaction. Answers the reason the
 * endpoint was disabled by it, if it was.
 */
export async function recordAttempt(knex: Knex, delivery: ClaimedDelivery, attempt: AttemptRecord, verdict: AttemptVerdict, options: RecordOptions): Promise<DisabledReason | undefined> {
  const now = new Date(options.nowMs);
  return knex.transaction(async (trx) => {
    await trx('webhook_attempts').insert({
      delivery_id: delivery.deliveryId,
      attempted_at: new Date(attempt.attemptedAtMs),
      status_code: attempt.statusCode,
      duration_ms: Math.round(attempt.durationMs),
      // What a receiver answered may hold what PostgreSQL's text cannot (NUL, a broken surrogate).
      response_body: storable(attempt.responseBody),
      error: attempt.error === null ? null : storable(attempt.error),
    });
    const status = verdict.kind === 'succeeded' ? 'succeeded' : verdict.kind === 'retry' ? 'pending' : 'failed';
    // Only the claim that made the attempt: not one whose lease ran out and was claimed again,
    // nor one whose delivery was disabled, redelivered or recovered meanwhile.
    const updated = await trx('webhook_deliveries')
      .where({ id: delivery.deliveryId, attempts: delivery.attempt, status: 'pending', updated_at: new Date(delivery.claimedAtMs) })
      .update({ status, next_attempt_at: verdict.kind === 'retry' ? new Date(verdict.atMs) : null, last_status_code: attempt.statusCode, updated_at: now });
    // Claimed again by another worker after this one's lease ran out: its outcome stands.
    if (updated === 0) return undefined;
    if (verdict.kind === 'succeeded') {
      await trx('webhook_endpoints').where({ id: delivery.endpointId }).update({ last_success_at: now, failing_since: null });
      return undefined;
    }
    const [endpoint] = await trx('webhook_endpoints')
      .where({ id: delivery.endpointId })
      .update({ failing_since: trx.raw('coalesce(failing_since, ?)', [now]) })
      .returning(['enabled', 'failing_since']);
    if (!endpoint?.enabled) return undefined;
    const reason: DisabledReason | undefined =
      verdict.kind === 'gone' ? 'gone' : options.nowMs - (endpoint.failing_since as Date).getTime() >= options.disableAfterMs ? 'failing' : undefined;
    if (reason) await disableEndpoint(trx, delivery.endpointId, delivery.orgId, reason, options.nowMs);
    return reason;
  });
}

const storable = (text: string) => text.replace(/\u0000|[\ud800-\udfff]/gu, '\ufffd');

/** Disabled by the server: its pending deliveries fail, and its organization's other endpoints and audit log are told. */
async function disableEndpoint(trx: Knex.Transaction, endpointId: string, orgId: string, reason: DisabledReason, nowMs: number): Promise<void> {
  await trx('webhook_endpoints').where({ id: endpointId }).update({ enabled: false, disabled_reason: reason, updated_at: new Date(nowMs) });
  await failPendingDeliveries(trx, endpointId, nowMs);
  await appendAuditEvent(trx, { type: 'webhook.endpoint_disabled', orgId, actor: 'system', data: { webhookId: endpointId, reason } });
}

/** Pending deliveries, and how long the longest-due one has been due. */
export async function queueStats(knex: Knex, nowMs: number): Promise<{ depth: number; oldestDueSeconds: number }> {
  const now = new Date(nowMs);
  const result = await knex.raw(
    `select count(*)::int as depth, min(next_attempt_at) filter (where next_attempt_at <= ?) as oldest_due
       from webhook_deliveries where status = 'pending'`,
    [now],
  );
  const row = result.rows[0] as { depth: number; oldest_due: Date | null };
  return { depth: row.depth, oldestDueSeconds: row.oldest_due ? Math.max(0, (nowMs - new Date(row.oldest_due).getTime()) / 1000) : 0 };
}

export const WEBHOOK_HISTORY_DAYS = 30;

/** Deliveries finished more than 30 days ago, with their attempts, in batches (a backlog is pruned over several passes). */
export async function pruneWebhookHistory(trx: Knex.Transaction, nowMs: number, { batch = 5_000, batches = 10 } = {}): Promise<void> {
  const before = new Date(nowMs - WEBHOOK_HISTORY_DAYS * 86_400_000);
  for (let i = 0; i < batches; i += 1) {
    const pruned = await trx('webhook_deliveries')
      .whereIn('id', trx('webhook_deliveries').select('id').whereIn('status', ['succeeded', 'failed']).where('updated_at', '<', before).limit(batch))
      .delete();
    if (pruned < batch) return;
  }
}
