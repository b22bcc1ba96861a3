/**
 * /api/v1/webhooks (webhooks:read, webhooks:write): the event catalogue, endpoints, their
 * secrets, tests, delivery history, redelivery and recovery. Parse, call the service, render.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { readJson } from '../http/body.js';
import { answeringOnly } from '../http/fixed-path.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { isStorableInstant, pageLimit, parseWith, requireUuid } from '../http/validation.js';
import { eventCatalogue, WEBHOOK_EVENT_TYPES } from './event-types.js';
import { createWebhookInput, recoverInput, rotateSecretInput, webhookPatchInput } from './webhook-input.js';
import type { WebhookService } from './webhook-service.js';

const listQuery = z.strictObject({ orgId: z.uuid().optional(), limit: pageLimit, cursor: z.uuid().optional() });
const deliveryId = z.string().regex(/^[1-9]\d{0,17}$/, 'must be a delivery id');
const deliveryQuery = z.strictObject({
  status: z.enum(['pending', 'succeeded', 'failed']).optional(),
  eventType: z.enum(WEBHOOK_EVENT_TYPES).optional(),
  since: z.iso.datetime({ offset: true }).refine(isStorableInstant, 'must be between the years 0001 and 9999').optional(),
  limit: pageLimit,
  cursor: deliveryId.optional(),
});

const EVENT_TYPES = '/api/v1/webhooks/event-types';
/** `…/event-types` also matches `/:webhookId`: it answers GET (and HEAD) alone, as documented. */
export const onlyGetEventTypes = answeringOnly(EVENT_TYPES, ['GET']);

const webhookIdOf = (ctx: Context) => requireUuid(ctx.params.webhookId, 'webhookId');
const deliveryIdOf = (ctx: Context) => parseWith(deliveryId, ctx.params.deliveryId, 'deliveryId');

export function webhookRoutes(webhooks: WebhookService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/webhooks' });
  const canRead = requireScope(authenticate, 'webhooks:read');
  const canWrite = requireScope(authenticate, 'webhooks:write');
  const caller = (ctx: Context) => callerOf<AgentCaller>(ctx);

  router.get('/event-types', canRead, (ctx) => {
    ctx.body = { data: eventCatalogue() };
  });

  router.post('/', canWrite, async (ctx) => {
    const input = parseWith(createWebhookInput, await readJson(ctx), 'The webhook');
    ctx.body = await webhooks.create(caller(ctx), input);
    ctx.status = 201;
    // The secret is in this answer only.
    ctx.set('Cache-Control', 'no-store');
  });

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(listQuery, ctx.query, 'The query');
    const page = await webhooks.list(caller(ctx), { orgId: query.orgId?.toLowerCase(), afterId: query.cursor?.toLowerCase(), limit: query.limit });
    ctx.body = { data: page.endpoints, nextCursor: page.hasMore ? page.endpoints[page.endpoints.length - 1].webhookId : null };
  });

  router.get('/:webhookId', canRead, async (ctx) => {
    ctx.body = await webhooks.get(caller(ctx), webhookIdOf(ctx));
  });

  router.patch('/:webhookId', canWrite, async (ctx) => {
    const webhookId = webhookIdOf(ctx);
    ctx.body = await webhooks.update(caller(ctx), webhookId, parseWith(webhookPatchInput, await readJson(ctx), 'The webhook'));
  });

  router.delete('/:webhookId', canWrite, async (ctx) => {
    ctx.body = await webhooks.delete(caller(ctx), webhookIdOf(ctx));
  });

  router.post('/:webhookId/secret/rotate', canWrite, async (ctx) => {
    const webhookId = webhookIdOf(ctx);
    const { gracePeriodSeconds } = parseWith(rotateSecretInput, await readJson(ctx), 'The rotation');
    ctx.body = await webhooks.rotateSecret(caller(ctx), webhookId, gracePeriodSeconds);
    ctx.set('Cache-Control', 'no-store');
  });

  router.post('/:webhookId/test', canWrite, async (ctx) => {
    ctx.body = await webhooks.test(caller(ctx), webhookIdOf(ctx));
    ctx.status = 202;
  });

  router.get('/:webhookId/deliveries', canRead, async (ctx) => {
    const webhookId = webhookIdOf(ctx);
    const query = parseWith(deliveryQuery, ctx.query, 'The query');
    const page = await webhooks.deliveries(caller(ctx), webhookId, {
      status: query.status,
      eventType: query.eventType,
      sinceMs: query.since === undefined ? undefined : Date.parse(query.since),
      beforeId: query.cursor,
      limit: query.limit,
    });
    ctx.body = { data: page.deliveries, nextCursor: page.hasMore ? page.deliveries[page.deliveries.length - 1].deliveryId : null };
  });

  router.get('/:webhookId/deliveries/:deliveryId/attempts', canRead, async (ctx) => {
    ctx.body = { data: await webhooks.attempts(caller(ctx), webhookIdOf(ctx), deliveryIdOf(ctx)) };
  });

  router.post('/:webhookId/deliveries/:deliveryId/redeliver', canWrite, async (ctx) => {
    ctx.body = await webhooks.redeliver(caller(ctx), webhookIdOf(ctx), deliveryIdOf(ctx));
    ctx.status = 202;
  });

  router.post('/:webhookId/recover', canWrite, async (ctx) => {
    const webhookId = webhookIdOf(ctx);
    const { since } = parseWith(recoverInput, await readJson(ctx), 'The recovery');
    ctx.body = await webhooks.recover(caller(ctx), webhookId, Date.parse(since));
    ctx.status = 202;
  });

  return router;
}
