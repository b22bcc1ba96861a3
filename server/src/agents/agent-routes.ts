/** /api/v1/agents: agents and their credentials. */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { z } from 'zod';
import { readJson } from '../http/body.js';
import { callerOf, requireScope } from '../http/authenticate.js';
import { notFound } from '../http/errors.js';
import { decodeCursor, displayText, encodeCursor, freeText, isStorableInstant, pageLimit, parseWith, requireUuid } from '../http/validation.js';
import type { AccessTokens } from '../oauth/access-tokens.js';
import { KNOWN_SCOPES } from '../oauth/scopes.js';
import { findAgent, listAgents } from './agent-store.js';
import { listCredentials } from './credential-store.js';
import {
  createAgent,
  createCredential,
  decommissionAgent,
  reactivateAgent,
  revokeCredential,
  suspendAgent,
  updateAgentDetails,
} from './agent-service.js';

const scopeList = z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length).transform((scopes) => [...new Set(scopes)]);
const description = freeText(1024).nullable();
export const createAgentBody = z.strictObject({ name: displayText(128), description: description.optional(), scopes: scopeList.optional() });
const patchAgentBody = z
  .strictObject({ name: displayText(128).optional(), description: description.optional(), scopes: scopeList.optional() })
  .refine((patch) => Object.keys(patch).length > 0, 'at least one of name, description, scopes is required');
const listQuery = z.strictObject({
  limit: pageLimit,
  cursor: z.string().max(512).optional(),
  status: z.enum(['active', 'suspended', 'decommissioned']).optional(),
});
const agentCursor = z.object({ createdAt: z.iso.datetime().refine(isStorableInstant), agentId: z.uuid() });

const actorOf = (ctx: Context) => `agent:${callerOf(ctx).agentId}`;
const agentIdOf = (ctx: Context) => requireUuid(ctx.params.agentId, 'agentId');

export function agentRoutes(knex: Knex, tokens: AccessTokens): Router {
  const router = new Router({ prefix: '/api/v1/agents' });
  const canRead = requireScope(tokens, 'agents:read');
  const canWrite = requireScope(tokens, 'agents:write');

  router.post('/', canWrite, async (ctx) => {
    const input = parseWith(createAgentBody, await readJson(ctx));
    ctx.status = 201;
    ctx.body = await createAgent(knex, input, actorOf(ctx));
  });

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(listQuery, ctx.query, 'The query');
    const after = decodeCursor(query.cursor, agentCursor);
    const { agents, hasMore } = await listAgents(knex, { limit: query.limit, status: query.status, after });
    const last = agents[agents.length - 1];
    ctx.body = { data: agents, nextCursor: hasMore ? encodeCursor({ createdAt: last.createdAt, agentId: last.agentId }) : null };
  });

  router.get('/:agentId', canRead, async (ctx) => {
    const agent = await findAgent(knex, agentIdOf(ctx));
    if (!agent) throw notFound('Agent');
    ctx.body = agent;
  });

  router.patch('/:agentId', canWrite, async (ctx) => {
    const agentId = agentIdOf(ctx);
    ctx.body = await updateAgentDetails(knex, agentId, parseWith(patchAgentBody, await readJson(ctx)), actorOf(ctx));
  });

  router.post('/:agentId/suspend', canWrite, async (ctx) => {
    ctx.body = await suspendAgent(knex, agentIdOf(ctx), actorOf(ctx));
  });

  router.post('/:agentId/reactivate', canWrite, async (ctx) => {
    ctx.body = await reactivateAgent(knex, agentIdOf(ctx), actorOf(ctx));
  });

  router.delete('/:agentId', canWrite, async (ctx) => {
    ctx.body = await decommissionAgent(knex, agentIdOf(ctx), actorOf(ctx));
  });

  router.post('/:agentId/credentials', canWrite, async (ctx) => {
    const agentId = agentIdOf(ctx);
    const { credentialId, clientId, clientSecret, createdAt } = await createCredential(knex, agentId, actorOf(ctx));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { credentialId, clientId, clientSecret, createdAt };
  });

  router.get('/:agentId/credentials', canRead, async (ctx) => {
    const agentId = agentIdOf(ctx);
    if (!(await findAgent(knex, agentId))) throw notFound('Agent');
    ctx.body = { data: await listCredentials(knex, agentId) };
  });

  router.delete('/:agentId/credentials/:credentialId', canWrite, async (ctx) => {
    const agentId = agentIdOf(ctx);
    const credentialId = requireUuid(ctx.params.credentialId, 'credentialId');
    ctx.body = await revokeCredential(knex, agentId, credentialId, actorOf(ctx));
  });

  return router;
}
