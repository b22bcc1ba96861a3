/**
 * /api/v1/federation/partners (admin:orgs in the platform organization; reading: the
 * service decides) and /api/v1/federation/bindings (agents:read, agents:write). Parse, call
 * the service, render.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { readJson } from '../http/body.js';
import { assertAuthenticated, callerOf, requireBearerToken, requireScope, type CallerLookup } from '../http/authenticate.js';
import { pageLimit, parseWith, requireUuid } from '../http/validation.js';
import { createBindingInput, createPartnerInput, partnerPatchInput } from './federation-input.js';
import type { FederationService } from './federation-service.js';

const partnerListQuery = z.strictObject({ limit: pageLimit, cursor: z.uuid().optional() });
const bindingListQuery = z.strictObject({
  agentId: z.uuid().optional(),
  partnerId: z.uuid().optional(),
  orgId: z.uuid().optional(),
  limit: pageLimit,
  cursor: z.uuid().optional(),
});

const partnerIdOf = (ctx: Context) => requireUuid(ctx.params.partnerId, 'partnerId');
const bindingIdOf = (ctx: Context) => requireUuid(ctx.params.bindingId, 'bindingId');

export function federationRoutes(federation: FederationService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/federation' });
  const canManage = requireScope(authenticate, 'admin:orgs');
  const canRead = requireScope(authenticate, 'agents:read');
  const canWrite = requireScope(authenticate, 'agents:write');
  // Reading partners: the service decides (admin:orgs on the platform, or agents:read for those open to the caller's organization).
  const isAuthenticated = async (ctx: Context, next: () => Promise<unknown>) => {
    ctx.state.caller = assertAuthenticated(await authenticate(requireBearerToken(ctx)));
    await next();
  };
  const caller = (ctx: Context) => callerOf<AgentCaller>(ctx);

  router.post('/partners', canManage, async (ctx) => {
    const input = parseWith(createPartnerInput, await readJson(ctx), 'The partner');
    ctx.body = await federation.createPartner(caller(ctx), input);
    ctx.status = 201;
  });

  router.get('/partners', isAuthenticated, async (ctx) => {
    const query = parseWith(partnerListQuery, ctx.query, 'The query');
    const page = await federation.listPartners(caller(ctx), { afterId: query.cursor?.toLowerCase(), limit: query.limit });
    ctx.body = { data: page.partners, nextCursor: page.hasMore ? page.partners[page.partners.length - 1].partnerId : null };
  });

  router.get('/partners/:partnerId', isAuthenticated, async (ctx) => {
    ctx.body = await federation.getPartner(caller(ctx), partnerIdOf(ctx));
  });

  router.patch('/partners/:partnerId', canManage, async (ctx) => {
    const partnerId = partnerIdOf(ctx);
    ctx.body = await federation.updatePartner(caller(ctx), partnerId, parseWith(partnerPatchInput, await readJson(ctx), 'The partner'));
  });

  router.delete('/partners/:partnerId', canManage, async (ctx) => {
    ctx.body = await federation.deletePartner(caller(ctx), partnerIdOf(ctx));
  });

  router.post('/partners/:partnerId/suspend', canManage, async (ctx) => {
    ctx.body = await federation.suspendPartner(caller(ctx), partnerIdOf(ctx));
  });

  router.post('/partners/:partnerId/reactivate', canManage, async (ctx) => {
    ctx.body = await federation.reactivatePartner(caller(ctx), partnerIdOf(ctx));
  });

  router.post('/bindings', canWrite, async (ctx) => {
    const input = parseWith(createBindingInput, await readJson(ctx), 'The binding');
    ctx.body = await federation.createBinding(caller(ctx), input);
    ctx.status = 201;
  });

  router.get('/bindings', canRead, async (ctx) => {
    const query = parseWith(bindingListQuery, ctx.query, 'The query');
    const page = await federation.listBindings(caller(ctx), {
      agentId: query.agentId?.toLowerCase(),
      partnerId: query.partnerId?.toLowerCase(),
      orgId: query.orgId?.toLowerCase(),
      afterId: query.cursor?.toLowerCase(),
      limit: query.limit,
    });
    ctx.body = { data: page.bindings, nextCursor: page.hasMore ? page.bindings[page.bindings.length - 1].bindingId : null };
  });

  router.get('/bindings/:bindingId', canRead, async (ctx) => {
    ctx.body = await federation.getBinding(caller(ctx), bindingIdOf(ctx));
  });

  router.delete('/bindings/:bindingId', canWrite, async (ctx) => {
    ctx.body = await federation.deleteBinding(caller(ctx), bindingIdOf(ctx));
  });

  return router;
}
