/** /api/v1/agents: agents and their credentials. Parse, call the agent service, render. */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { readJson } from '../http/body.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { decodeCursor, encodeCursor, isStorableInstant, pageLimit, parseWith, requireUuid } from '../http/validation.js';
import { agentPatchInput, createAgentInput } from './agent-input.js';
import type { AgentService } from './agent-service.js';

const listQuery = z.strictObject({
  limit: pageLimit,
  cursor: z.string().max(512).optional(),
  status: z.enum(['active', 'suspended', 'decommissioned']).optional(),
  orgId: z.uuid().optional(),
});
const agentCursor = z.object({ createdAt: z.iso.datetime().refine(isStorableInstant), agentId: z.uuid() });

const agentIdOf = (ctx: Context) => requireUuid(ctx.params.agentId, 'agentId');

export function agentRoutes(agents: AgentService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/agents' });
  const canRead = requireScope(authenticate, 'agents:read');
  const canWrite = requireScope(authenticate, 'agents:write');
  const caller = (ctx: Context) => callerOf<AgentCaller>(ctx);

  router.post('/', canWrite, async (ctx) => {
    const input = parseWith(createAgentInput, await readJson(ctx));
    ctx.body = await agents.create(caller(ctx), input);
    ctx.status = 201;
  });

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(listQuery, ctx.query, 'The query');
    const after = decodeCursor(query.cursor, agentCursor);
    const { agents: page, hasMore } = await agents.list(caller(ctx), { limit: query.limit, status: query.status, after, orgId: query.orgId?.toLowerCase() });
    const last = page[page.length - 1];
    ctx.body = { data: page, nextCursor: hasMore ? encodeCursor({ createdAt: last.createdAt, agentId: last.agentId }) : null };
  });

  router.get('/:agentId', canRead, async (ctx) => {
    ctx.body = await agents.get(caller(ctx), agentIdOf(ctx));
  });

  router.patch('/:agentId', canWrite, async (ctx) => {
    const agentId = agentIdOf(ctx);
    ctx.body = await agents.update(caller(ctx), agentId, parseWith(agentPatchInput, await readJson(ctx)));
  });

  router.post('/:agentId/suspend', canWrite, async (ctx) => {
    ctx.body = await agents.suspend(caller(ctx), agentIdOf(ctx));
  });

  router.post('/:agentId/reactivate', canWrite, async (ctx) => {
    ctx.body = await agents.reactivate(caller(ctx), agentIdOf(ctx));
  });

  router.delete('/:agentId', canWrite, async (ctx) => {
    ctx.body = await agents.decommission(caller(ctx), agentIdOf(ctx));
  });

  router.post('/:agentId/credentials', canWrite, async (ctx) => {
    const { credentialId, clientId, clientSecret, orgId, createdAt } = await agents.createCredential(caller(ctx), agentIdOf(ctx));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { credentialId, clientId, clientSecret, orgId, createdAt };
  });

  router.get('/:agentId/credentials', canRead, async (ctx) => {
    ctx.body = { data: await agents.listCredentials(caller(ctx), agentIdOf(ctx)) };
  });

  router.delete('/:agentId/credentials/:credentialId', canWrite, async (ctx) => {
    const agentId = agentIdOf(ctx);
    const credentialId = requireUuid(ctx.params.credentialId, 'credentialId');
    ctx.body = await agents.revokeCredential(caller(ctx), agentId, credentialId);
  });

  return router;
}
