/** Database access for webhook endpoints, deliveries and attempts; returns domain objects, never rows. */
import type { Knex } from 'knex';
import type { StoredSecret } from './webhook-secrets.js';

type Db = Knex | Knex.Transaction;

export type DisabledReason = 'gone' | 'failing';

export interface WebhookEndpoint {
  readonly webhookId: string;
  readonly orgId: string;
  readonly url: string;
  readonly description: string | null;
  readonly eventTypes: readonly string[];
  readonly enabled: boolean;
  /** Why the server disabled it: it answered 410 (`gone`), or failed for five days (`failing`); null when enabled or disabled by a user. */
  readonly disabledReason: DisabledReason | null;
  /** Until then the previous secret signs too (a rotation's grace period). */
  readonly previousSecretExpiresAt: string | null;
  /** The first failure since the last success. */
  readonly failingSince: string | null;
  readonly lastSuccessAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookDelivery {
  readonly deliveryId: string;
  readonly webhookId: string;
  /** The `webhook-id` header of every attempt. */
  readonly messageId: string;
  readonly eventType: string;
  /** The audit event it carries; null for an event kept out of the audit chain (`audit.chain_broken`). */
  readonly auditEventId: string | null;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** When it is next attempted (pending only). */
  readonly nextAttemptAt: string | null;
  readonly lastStatusCode: number | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface WebhookAttempt {
  readonly attemptedAt: string;
  /** Null when no answer came (a network error, a timeout, a refusal of the egress guard). */
  readonly statusCode: number | null;
  readonly durationMs: number;
  /** The first 1 KiB of the answer. */
  readonly responseBody: string;
  readonly error: string | null;
}

interface EndpointRow {
  id: string;
  org_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: DisabledReason | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
  last_success_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  message_id: string;
  audit_event_id: string | null;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_status_code: number | null;
  created_at: Date;
  updated_at: Date;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

const toEndpoint = (row: EndpointRow): WebhookEndpoint => ({
  webhookId: row.id,
  orgId: row.org_id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  disabledReason: row.disabled_reason,
  previousSecretExpiresAt: iso(row.previous_secret_expires_at),
  failingSince: iso(row.failing_since),
  lastSuccessAt: iso(row.last_success_at),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

const toDelivery = (row: DeliveryRow): WebhookDelivery => ({
  deliveryId: String(row.id),
  webhookId: row.endpoint_id,
  messageId: row.message_id,
  eventType: row.event_type,
  auditEventId: row.audit_event_id === null ? null : String(row.audit_event_id),
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
  lastStatusCode: row.last_status_code,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

const ENDPOINT_COLUMNS = [
  'id', 'org_id', 'url', 'description', 'event_types', 'enabled', 'disabled_reason', 'previous_secret_expires_at', 'failing_since', 'last_success_at', 'created_at', 'updated_at',
];

export interface NewEndpoint {
  readonly id: string;
  readonly orgId: string;
  readonly url: string;
  readonly description: string | null;
  readonly eventTypes: readonly string[];
  readonly enabled: boolean;
  readonly secret: StoredSecret;
  readonly nowMs: number;
}

export async function insertEndpoint(trx: Knex.Transaction, endpoint: NewEndpoint): Promise<WebhookEndpoint> {
  const now = new Date(endpoint.nowMs);
  const [row] = await trx('webhook_endpoints')
    .insert({
      id: endpoint.id,
      org_id: endpoint.orgId,
      url: endpoint.url,
      description: endpoint.description,
      event_types: endpoint.eventTypes,
      enabled: endpoint.enabled,
      secret: endpoint.secret.secret,
      secret_kek_id: endpoint.secret.kekId,
      created_at: now,
      updated_at: now,
    })
    .returning(ENDPOINT_COLUMNS);
  return toEndpoint(row);
}

/** `withinOrg`: only an endpoint of that organization is found (and locked). */
export async function findEndpoint(db: Db, id: string, { forUpdate = false, withinOrg }: { forUpdate?: boolean; withinOrg?: string } = {}): Promise<WebhookEndpoint | undefined> {
  const query = db<EndpointRow>('webhook_endpoints')
    .where({ id })
    .modify((builder) => {
      if (withinOrg) builder.where('org_id', withinOrg);
    })
    .first(ENDPOINT_COLUMNS);
  const row = await (forUpdate ? query.forUpdate() : query);
  return row ? toEndpoint(row) : undefined;
}

export async function listEndpoints(db: Db, query: { orgId: string; afterId?: string; limit: number }): Promise<{ endpoints: WebhookEndpoint[]; hasMore: boolean }> {
  const rows: EndpointRow[] = await db('webhook_endpoints')
    .where('org_id', query.orgId)
    .modify((builder) => {
      if (query.afterId) builder.where('id', '>', query.afterId);
    })
    .orderBy('id')
    .limit(query.limit + 1)
    .select(ENDPOINT_COLUMNS);
  return { endpoints: rows.slice(0, query.limit).map(toEndpoint), hasMore: rows.length > query.limit };
}

export async function countEndpoints(db: Db, orgId: string): Promise<number> {
  const [{ count }] = await db('webhook_endpoints').where('org_id', orgId).count<{ count: string }[]>({ count: '*' });
  return Number(count);
}

export interface EndpointChange {
  readonly url?: string;
  readonly description?: string | null;
  readonly eventTypes?: readonly string[];
  readonly enabled?: boolean;
  readonly disabledReason?: DisabledReason | null;
}

export async function updateEndpoint(trx: Knex.Transaction, id: string, change: EndpointChange, nowMs: number): Promise<WebhookEndpoint> {
  const [row] = await trx('webhook_endpoints')
    .where({ id })
    .update({
      ...(change.url !== undefined && { url: change.url }),
      ...(change.description !== undefined && { description: change.description }),
      ...(change.eventTypes !== undefined && { event_types: change.eventTypes }),
      ...(change.enabled !== undefined && { enabled: change.enabled }),
      ...(change.disabledReason !== undefined && { disabled_reason: change.disabledReason }),
      // Enabled again: its failures start afresh.
      ...(change.enabled === true && { failing_since: null, disabled_reason: null }),
      updated_at: new Date(nowMs),
    })
    .returning(ENDPOINT_COLUMNS);
  return toEndpoint(row);
}

/** The new secret signs from now; the current one too until `previousExpiresAtMs` (null: not at all). */
export async function replaceSecret(trx: Knex.Transaction, id: string, next: StoredSecret, previousExpiresAtMs: number | null, nowMs: number): Promise<WebhookEndpoint> {
  const [row] = await trx('webhook_endpoints')
    .where({ id })
    .update({
      previous_secret: previousExpiresAtMs === null ? null : trx.ref('secret'),
      previous_secret_kek_id: previousExpiresAtMs === null ? null : trx.ref('secret_kek_id'),
      previous_secret_expires_at: previousExpiresAtMs === null ? null : new Date(previousExpiresAtMs),
      secret: next.secret,
      secret_kek_id: next.kekId,
      updated_at: new Date(nowMs),
    })
    .returning(ENDPOINT_COLUMNS);
  return toEndpoint(row);
}

/** Every endpoint's secrets as stored, for re-sealing under a new key-encryption key. */
export async function storedSecrets(trx: Knex.Transaction): Promise<{ id: string; secret: StoredSecret; previous: StoredSecret | null }[]> {
  const rows: { id: string; secret: Buffer; secret_kek_id: string | null; previous_secret: Buffer | null; previous_secret_kek_id: string | null }[] = await trx('webhook_endpoints')
    .select('id', 'secret', 'secret_kek_id', 'previous_secret', 'previous_secret_kek_id')
    .forUpdate();
  return rows.map((row) => ({
    id: row.id,
    secret: { secret: row.secret, kekId: row.secret_kek_id },
    previous: row.previous_secret ? { secret: row.previous_secret, kekId: row.previous_secret_kek_id } : null,
  }));
}

export async function storeSecrets(trx: Knex.Transaction, id: string, secret: StoredSecret, previous: StoredSecret | null): Promise<void> {
  await trx('webhook_endpoints')
    .where({ id })
    .update({
      secret: secret.secret,
      secret_kek_id: secret.kekId,
      ...(previous && { previous_secret: previous.secret, previous_secret_kek_id: previous.kekId }),
    });
}

/** The endpoint and, by cascade, its deliveries and their attempts. */
export async function deleteEndpoint(trx: Knex.Transaction, id: string): Promise<void> {
  await trx('webhook_endpoints').where({ id }).delete();
}

/** Its pending deliveries end as failed (when it is disabled). */
export async function failPendingDeliveries(trx: Knex.Transaction, endpointId: string, nowMs: number): Promise<number> {
  return trx('webhook_deliveries').where({ endpoint_id: endpointId, status: 'pending' }).update({ status: 'failed', next_attempt_at: null, updated_at: new Date(nowMs) });
}

export interface DeliveryQuery {
  readonly endpointId: string;
  readonly status?: DeliveryStatus;
  readonly eventType?: string;
  readonly sinceMs?: number;
  /** Older than this delivery (newest first). */
  readonly beforeId?: string;
  readonly limit: number;
}

const DELIVERY_COLUMNS = ['id', 'endpoint_id', 'message_id', 'audit_event_id', 'event_type', 'status', 'attempts', 'next_attempt_at', 'last_status_code', 'created_at', 'updated_at'];

export async function listDeliveries(db: Db, query: DeliveryQuery): Promise<{ deliveries: WebhookDelivery[]; hasMore: boolean }> {
  const rows: DeliveryRow[] = await db('webhook_deliveries')
    .where('endpoint_id', query.endpointId)
    .modify((builder) => {
      if (query.status) builder.where('status', query.status);
      if (query.eventType) builder.where('event_type', query.eventType);
      if (query.sinceMs !== undefined) builder.where('created_at', '>=', new Date(query.sinceMs));
      if (query.beforeId) builder.where('id', '<', query.beforeId);
    })
    .orderBy('id', 'desc')
    .limit(query.limit + 1)
    .select(DELIVERY_COLUMNS);
  return { deliveries: rows.slice(0, query.limit).map(toDelivery), hasMore: rows.length > query.limit };
}

export async function findDelivery(db: Db, endpointId: string, deliveryId: string, forUpdate = false): Promise<WebhookDelivery | undefined> {
  const query = db('webhook_deliveries').where({ id: deliveryId, endpoint_id: endpointId }).first(DELIVERY_COLUMNS);
  const row = (await (forUpdate ? query.forUpdate() : query)) as DeliveryRow | undefined;
  return row ? toDelivery(row) : undefined;
}

export async function listAttempts(db: Db, deliveryId: string): Promise<WebhookAttempt[]> {
  const rows: { attempted_at: Date; status_code: number | null; duration_ms: number; response_body: string; error: string | null }[] = await db('webhook_attempts')
    .where('delivery_id', deliveryId)
    .orderBy('id')
    .select('attempted_at', 'status_code', 'duration_ms', 'response_body', 'error');
  return rows.map((row) => ({ attemptedAt: row.attempted_at.toISOString(), statusCode: row.status_code, durationMs: row.duration_ms, responseBody: row.response_body, error: row.error }));
}

/** Due now, with its whole schedule again; the same `webhook-id`. */
export async function requeueDelivery(trx: Knex.Transaction, deliveryId: string, nowMs: number): Promise<WebhookDelivery> {
  const now = new Date(nowMs);
  const [row] = await trx('webhook_deliveries').where({ id: deliveryId }).update({ status: 'pending', attempts: 0, next_attempt_at: now, updated_at: now }).returning(DELIVERY_COLUMNS);
  return toDelivery(row);
}

/** Every failed delivery of the endpoint queued since then, due now again. */
export async function requeueFailedSince(trx: Knex.Transaction, endpointId: string, sinceMs: number, nowMs: number): Promise<number> {
  const now = new Date(nowMs);
  return trx('webhook_deliveries')
    .where({ endpoint_id: endpointId, status: 'failed' })
    .where('created_at', '>=', new Date(sinceMs))
    .update({ status: 'pending', attempts: 0, next_attempt_at: now, updated_at: now });
}

/** A delivery of one event to one endpoint, due now (webhook.test); nothing if it is queued already. */
export async function queueDelivery(trx: Knex.Transaction, delivery: { orgId: string; endpointId: string; auditEventId: string; eventType: string; nowMs: number }): Promise<WebhookDelivery | undefined> {
  const now = new Date(delivery.nowMs);
  const rows: DeliveryRow[] = await trx('webhook_deliveries')
    .insert({
      org_id: delivery.orgId,
      endpoint_id: delivery.endpointId,
      message_id: `msg_${delivery.auditEventId}`,
      audit_event_id: delivery.auditEventId,
      event_type: delivery.eventType,
      status: 'pending',
      attempts: 0,
      next_attempt_at: now,
      created_at: now,
      updated_at: now,
    })
    .onConflict(['endpoint_id', 'message_id'])
    .ignore()
    .returning(DELIVERY_COLUMNS);
  return rows[0] ? toDelivery(rows[0]) : undefined;
}
