/**
 * Webhook endpoints (webhooks:write to change, webhooks:read to read), in the caller's
 * organization (a platform caller with admin:orgs in any, `orgId`). Each change and its
 * audit row commit together. A URL is checked by the egress guard when it is saved (and
 * again by the worker at every delivery); the signing secret is answered once, at creation
 * or rotation, never again, and is never written to the audit log or a log line (nor is the
 * URL, whose path may carry a receiver's own secret).
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { appendAuditEvent } from '../audit/audit-log.js';
import { actorOf, requireScope, type Caller } from '../authorization/caller.js';
import { assertVisible, confinementOf } from '../authorization/tenancy.js';
import type { Clock } from '../clock.js';
import { EgressFailed, EgressRefused, type EgressFetch } from '../egress/egress-guard.js';
import { Conflict, Forbidden, NotFound, ValidationFailed } from '../errors.js';
import type { KeyRing } from '../keys/key-encryption.js';
import { assertAcceptsChanges, organizationFor } from '../tenancy/organization-scope.js';
import { TEST_EVENT } from './event-types.js';
import { MAX_GRACE_PERIOD_SECONDS, type CreateWebhookInput, type WebhookPatchInput } from './webhook-input.js';
import { newWebhookSecret, resealed, sealSecret } from './webhook-secrets.js';
import {
  countEndpoints,
  deleteEndpoint,
  failPendingDeliveries,
  findDelivery,
  findEndpoint,
  insertEndpoint,
  listAttempts,
  listDeliveries,
  listEndpoints,
  queueDelivery,
  replaceSecret,
  requeueDelivery,
  requeueFailedSince,
  storedSecrets,
  storeSecrets,
  updateEndpoint,
  type DeliveryQuery,
  type WebhookAttempt,
  type WebhookDelivery,
  type WebhookEndpoint,
} from './webhook-store.js';

/** Endpoints per organization when its `limits.maxWebhookEndpoints` is not set. */
export const DEFAULT_MAX_WEBHOOK_ENDPOINTS = 20;

export interface WebhookServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly egress: Pick<EgressFetch, 'checkUrl'>;
}

export type EndpointWithSecret = WebhookEndpoint & { readonly secret: string };

export class WebhookService {
  constructor(private readonly deps: WebhookServiceDeps) {}

  async create(caller: Caller, input: CreateWebhookInput): Promise<EndpointWithSecret> {
    requireScope(caller, 'webhooks:write');
    await this.assertReachable(input.url);
    const { knex, clock, keyRing } = this.deps;
    return knex.transaction(async (trx) => {
      // Locked: the count below stays exact under concurrent creations.
      const org = await organizationFor(trx, caller, input.orgId, true);
      assertAcceptsChanges(org);
      const limit = org.limits.maxWebhookEndpoints ?? DEFAULT_MAX_WEBHOOK_ENDPOINTS;
      if ((await countEndpoints(trx, org.orgId)) >= limit) {
        throw new Forbidden(`The organization's limit of ${limit} webhook endpoints has been reached.`);
      }
      const id = crypto.randomUUID();
      const secret = newWebhookSecret();
      const endpoint = await insertEndpoint(trx, {
        id,
        orgId: org.orgId,
        url: input.url,
        description: input.description ?? null,
        eventTypes: input.eventTypes,
        enabled: input.enabled ?? true,
        secret: sealSecret(keyRing, id, secret),
        nowMs: clock.now(),
      });
      await appendAuditEvent(trx, { type: 'webhook.created', orgId: org.orgId, actor: actorOf(caller), data: { webhookId: id, eventTypes: endpoint.eventTypes } });
      return { ...endpoint, secret };
    });
  }

  async list(caller: Caller, query: { orgId?: string; afterId?: string; limit: number }): Promise<{ endpoints: WebhookEndpoint[]; hasMore: boolean }> {
    requireScope(caller, 'webhooks:read');
    const org = await organizationFor(this.deps.knex, caller, query.orgId);
    return listEndpoints(this.deps.knex, { orgId: org.orgId, afterId: query.afterId, limit: query.limit });
  }

  async get(caller: Caller, webhookId: string): Promise<WebhookEndpoint> {
    requireScope(caller, 'webhooks:read');
    return this.visible(this.deps.knex, caller, webhookId);
  }

  async update(caller: Caller, webhookId: string, patch: WebhookPatchInput): Promise<WebhookEndpoint> {
    requireScope(caller, 'webhooks:write');
    if (patch.url !== undefined) await this.assertReachable(patch.url);
    return this.deps.knex.transaction(async (trx) => {
      const current = await this.visible(trx, caller, webhookId, true);
      const nowMs = this.deps.clock.now();
      const endpoint = await updateEndpoint(trx, webhookId, { ...patch, ...(patch.enabled === false && { disabledReason: null }) }, nowMs);
      if (current.enabled && patch.enabled === false) await failPendingDeliveries(trx, webhookId, nowMs);
      await appendAuditEvent(trx, { type: 'webhook.updated', orgId: current.orgId, actor: actorOf(caller), data: { webhookId, changed: Object.keys(patch) } });
      return endpoint;
    });
  }

  /** The endpoint, its deliveries and their attempts. */
  async delete(caller: Caller, webhookId: string): Promise<WebhookEndpoint> {
    requireScope(caller, 'webhooks:write');
    return this.deps.knex.transaction(async (trx) => {
      const endpoint = await this.visible(trx, caller, webhookId, true);
      await deleteEndpoint(trx, webhookId);
      await appendAuditEvent(trx, { type: 'webhook.deleted', orgId: endpoint.orgId, actor: actorOf(caller), data: { webhookId } });
      return endpoint;
    });
  }

  /** A new secret, answered once; the current one keeps signing (beside it) for the grace period. */
  async rotateSecret(caller: Caller, webhookId: string, gracePeriodSeconds: number): Promise<EndpointWithSecret> {
    requireScope(caller, 'webhooks:write');
    if (gracePeriodSeconds > MAX_GRACE_PERIOD_SECONDS) throw new ValidationFailed(`gracePeriodSeconds is at most ${MAX_GRACE_PERIOD_SECONDS}.`, {}, { field: 'gracePeriodSeconds' });
    return this.deps.knex.transaction(async (trx) => {
      const current = await this.visible(trx, caller, webhookId, true);
      const nowMs = this.deps.clock.now();
      const secret = newWebhookSecret();
      const endpoint = await replaceSecret(trx, webhookId, sealSecret(this.deps.keyRing, webhookId, secret), gracePeriodSeconds > 0 ? nowMs + gracePeriodSeconds * 1000 : null, nowMs);
      await appendAuditEvent(trx, { type: 'webhook.secret_rotated', orgId: current.orgId, actor: actorOf(caller), data: { webhookId, gracePeriodSeconds } });
      return { ...endpoint, secret };
    });
  }

  /** Queues `webhook.test` for this endpoint only; it is sent once the audit chain has placed its event. */
  async test(caller: Caller, webhookId: string): Promise<WebhookDelivery> {
    requireScope(caller, 'webhooks:write');
    return this.deps.knex.transaction(async (trx) => {
      const endpoint = await this.visible(trx, caller, webhookId, true);
      if (!endpoint.enabled) throw new Conflict('The webhook endpoint is disabled; enable it first.');
      const auditEventId = await appendAuditEvent(trx, { type: 'webhook.test', orgId: endpoint.orgId, actor: actorOf(caller), data: { webhookId } });
      const delivery = await queueDelivery(trx, { orgId: endpoint.orgId, endpointId: webhookId, auditEventId, eventType: TEST_EVENT, nowMs: this.deps.clock.now() });
      return delivery as WebhookDelivery;
    });
  }

  async deliveries(caller: Caller, webhookId: string, query: Omit<DeliveryQuery, 'endpointId'>): Promise<{ deliveries: WebhookDelivery[]; hasMore: boolean }> {
    requireScope(caller, 'webhooks:read');
    await this.visible(this.deps.knex, caller, webhookId);
    return listDeliveries(this.deps.knex, { ...query, endpointId: webhookId });
  }

  async attempts(caller: Caller, webhookId: string, deliveryId: string): Promise<WebhookAttempt[]> {
    requireScope(caller, 'webhooks:read');
    await this.visible(this.deps.knex, caller, webhookId);
    if (!(await findDelivery(this.deps.knex, webhookId, deliveryId))) throw new NotFound('Delivery');
    return listAttempts(this.deps.knex, deliveryId);
  }

  /** The delivery again, now, with its whole schedule and the same `webhook-id`. */
  async redeliver(caller: Caller, webhookId: string, deliveryId: string): Promise<WebhookDelivery> {
    requireScope(caller, 'webhooks:write');
    return this.deps.knex.transaction(async (trx) => {
      const endpoint = await this.visible(trx, caller, webhookId, true);
      if (!endpoint.enabled) throw new Conflict('The webhook endpoint is disabled; enable it first.');
      const delivery = await findDelivery(trx, webhookId, deliveryId, true);
      if (!delivery) throw new NotFound('Delivery');
      if (delivery.status === 'pending') throw new Conflict('The delivery is already pending.');
      const requeued = await requeueDelivery(trx, deliveryId, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'webhook.redelivered', orgId: endpoint.orgId, actor: actorOf(caller), data: { webhookId, deliveryId } });
      return requeued;
    });
  }

  /** Every failed delivery queued since then, due again now. */
  async recover(caller: Caller, webhookId: string, sinceMs: number): Promise<{ requeued: number }> {
    requireScope(caller, 'webhooks:write');
    return this.deps.knex.transaction(async (trx) => {
      const endpoint = await this.visible(trx, caller, webhookId, true);
      if (!endpoint.enabled) throw new Conflict('The webhook endpoint is disabled; enable it first.');
      const requeued = await requeueFailedSince(trx, webhookId, sinceMs, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'webhook.recovered', orgId: endpoint.orgId, actor: actorOf(caller), data: { webhookId, since: new Date(sinceMs).toISOString(), requeued } });
      return { requeued };
    });
  }

  /**
   * Every endpoint's secrets (and previous secrets) sealed under the current key-encryption
   * key: those under the previous one, and those stored in clear before a KEK was set
   * (`keys rewrap`). Answers how many endpoints changed.
   */
  async resealSecrets(caller: Caller): Promise<number> {
    if (caller.kind !== 'operator') throw new Forbidden('Only the operator re-encrypts webhook secrets.');
    const ring = this.deps.keyRing;
    if (!ring.current) return 0;
    return this.deps.knex.transaction(async (trx) => {
      let changed = 0;
      for (const endpoint of await storedSecrets(trx)) {
        const secret = resealed(ring, endpoint.id, endpoint.secret);
        const previous = endpoint.previous && resealed(ring, endpoint.id, endpoint.previous);
        if (!secret && !previous) continue;
        await storeSecrets(trx, endpoint.id, secret ?? endpoint.secret, previous ?? null);
        changed += 1;
      }
      if (changed > 0) await appendAuditEvent(trx, { type: 'webhook.secrets_resealed', actor: actorOf(caller), data: { kekId: ring.current?.id, endpoints: changed } });
      return changed;
    });
  }

  private async visible(db: Knex | Knex.Transaction, caller: Caller, webhookId: string, forUpdate = false): Promise<WebhookEndpoint> {
    return assertVisible(caller, await findEndpoint(db, webhookId, { forUpdate, withinOrg: confinementOf(caller) }), 'Webhook');
  }

  /** The egress guard's rules, at save time: a URL it would refuse is a 400 naming why. */
  private async assertReachable(url: string): Promise<void> {
    try {
      await this.deps.egress.checkUrl(url);
    } catch (error) {
      // Which address a name resolves to is not told: a tenant could map the internal network with it.
      if (error instanceof EgressRefused) {
        const why = error.reason === 'address' ? 'the host resolves to an address that is not allowed (loopback, private, link-local or reserved)' : error.message.replace(/^.*refused: /, '');
        throw new ValidationFailed(`url cannot be used for webhooks: ${why}`, {}, { field: 'url' });
      }
      if (error instanceof EgressFailed) throw new ValidationFailed('url cannot be used for webhooks: the host does not resolve', {}, { field: 'url' });
      throw error;
    }
  }
}
