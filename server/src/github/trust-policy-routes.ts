/** /api/v1/oidc/trust-policies: create, list (filter agentId), read and delete. Parse, call the service, render. */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { readJson } from '../http/body.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { pageLimit, parseWith, requireUuid } from '../http/validation.js';
import { parseTrustPolicyInput } from './trust-policy-input.js';
import type { TrustPolicyService } from './trust-policy-service.js';

const listQuery = z.strictObject({ agentId: z.uuid().optional(), orgId: z.uuid().optional(), limit: pageLimit, cursor: z.uuid().optional() });

export function trustPolicyRoutes(policies: TrustPolicyService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/oidc/trust-policies' });
  const canRead = requireScope(authenticate, 'agents:read');
  const canWrite = requireScope(authenticate, 'agents:write');
  const caller = (ctx: Context) => callerOf<AgentCaller>(ctx);

  router.post('/', canWrite, async (ctx) => {
    const policy = parseTrustPolicyInput(await readJson(ctx));
    ctx.body = await policies.create(caller(ctx), policy);
    ctx.status = 201;
  });

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(listQuery, ctx.query, 'The query');
    const page = await policies.list(caller(ctx), {
      agentId: query.agentId?.toLowerCase(),
      orgId: query.orgId?.toLowerCase(),
      afterId: query.cursor?.toLowerCase(), limit: query.limit });
    ctx.body = { data: page.policies, nextCursor: page.hasMore ? page.policies[page.policies.length - 1].id : null };
  });

  router.get('/:id', canRead, async (ctx) => {
    ctx.body = await policies.get(caller(ctx), requireUuid(ctx.params.id, 'id'));
  });

  router.delete('/:id', canWrite, async (ctx) => {
    ctx.body = await policies.delete(caller(ctx), requireUuid(ctx.params.id, 'id'));
  });

  return router;
}
