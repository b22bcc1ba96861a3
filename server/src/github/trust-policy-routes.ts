/** /api/v1/oidc/trust-policies: create, list (filter agentId), read and delete. */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { z } from 'zod';
import { findAgent } from '../agents/agent-store.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { readJson } from '../http/body.js';
import { callerOf, requireScope } from '../http/authenticate.js';
import { notFound, validationError } from '../http/errors.js';
import { exactText, pageLimit, parseWith, requireUuid } from '../http/validation.js';
import type { AccessTokens } from '../oauth/access-tokens.js';
import { KNOWN_SCOPES } from '../oauth/scopes.js';
import { deleteTrustPolicy, findTrustPolicy, insertTrustPolicy, listTrustPolicies } from './trust-policy-store.js';

// GitHub's rules: owners are 1–39 alphanumerics or single hyphens; repository names 1–100 of [A-Za-z0-9._-].
const REPOSITORY = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\/[A-Za-z0-9._-]{1,100}$/;
// A branch name, not a ref: `main`, `release/v1`; never `refs/heads/main`.
const BRANCH = /^(?!refs\/)(?!\/)(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\u0000-\u001f\u007f]{1,255}(?<![/.])$/;
const WORKFLOW_REF = /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+\/[^\s@]+@[^\s]+$/;
const NUMERIC_ID = z.union([z.string().regex(/^[1-9]\d{0,19}$/), z.number().int().positive()]).transform(String);
const PRIVILEGED_EVENTS = ['pull_request_target', 'workflow_run'] as const;

const createPolicyBody = z.strictObject({
  provider: z.literal('github'),
  repository: z.string().regex(REPOSITORY, 'must be owner/name'),
  agentId: z.uuid().optional(),
  branch: exactText(255).regex(BRANCH, 'must be a branch name such as main (not a ref)').optional(),
  environment: exactText(255).optional(),
  workflowRef: exactText(1024).regex(WORKFLOW_REF, 'must look like owner/repo/.github/workflows/file.yml@refs/heads/main').optional(),
  jobWorkflowRef: exactText(1024).regex(WORKFLOW_REF, 'must look like owner/repo/.github/workflows/file.yml@refs/heads/main').optional(),
  repositoryId: NUMERIC_ID.optional(),
  repositoryOwnerId: NUMERIC_ID.optional(),
  allowedEvents: z.array(z.enum(PRIVILEGED_EVENTS)).max(2).optional(),
  scopes: z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length).optional(),
});

const listQuery = z.strictObject({ agentId: z.uuid().optional(), limit: pageLimit, cursor: z.uuid().optional() });

const actorOf = (ctx: Context) => `agent:${callerOf(ctx).agentId}`;

export function trustPolicyRoutes(knex: Knex, tokens: AccessTokens): Router {
  const router = new Router({ prefix: '/api/v1/oidc/trust-policies' });
  const canRead = requireScope(tokens, 'agents:read');
  const canWrite = requireScope(tokens, 'agents:write');

  router.post('/', canWrite, async (ctx) => {
    const input = parseWith(createPolicyBody, await readJson(ctx));
    const agentId = input.agentId?.toLowerCase() ?? null;
    if (agentId) {
      const agent = await findAgent(knex, agentId);
      if (!agent || agent.status === 'decommissioned') {
        throw validationError('agentId does not name an existing agent.', { field: 'agentId' });
      }
      const lacking = input.scopes?.filter((scope) => !agent.scopes.includes(scope));
      if (lacking?.length) throw validationError(`The agent does not hold the scope '${lacking[0]}'.`, { field: 'scopes' });
    }
    const policy = await knex.transaction(async (trx) => {
      const created = await insertTrustPolicy(trx, {
        ...input,
        agentId,
        allowedEvents: [...new Set(input.allowedEvents ?? [])],
        scopes: input.scopes ? [...new Set(input.scopes)] : null,
      });
      await appendAuditEvent(trx, { type: 'trust_policy.created', agentId, actor: actorOf(ctx), data: { policy: created } });
      return created;
    });
    ctx.status = 201;
    ctx.body = policy;
  });

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(listQuery, ctx.query, 'The query');
    const { policies, hasMore } = await listTrustPolicies(knex, {
      agentId: query.agentId?.toLowerCase(),
      afterId: query.cursor?.toLowerCase(),
      limit: query.limit,
    });
    ctx.body = { data: policies, nextCursor: hasMore ? policies[policies.length - 1].id : null };
  });

  router.get('/:id', canRead, async (ctx) => {
    const policy = await findTrustPolicy(knex, requireUuid(ctx.params.id, 'id'));
    if (!policy) throw notFound('Trust policy');
    ctx.body = policy;
  });

  router.delete('/:id', canWrite, async (ctx) => {
    const id = requireUuid(ctx.params.id, 'id');
    ctx.body = await knex.transaction(async (trx) => {
      const deleted = await deleteTrustPolicy(trx, id);
      if (!deleted) throw notFound('Trust policy');
      await appendAuditEvent(trx, { type: 'trust_policy.deleted', agentId: deleted.agentId, actor: actorOf(ctx), data: { policyId: id } });
      return deleted;
    });
  });

  return router;
}
