/**
 * POST /api/v1/oidc/register: a workflow matching a registration policy (one with no
 * agentId) creates an agent owned by its repository, bound to it by a new trust policy
 * that carries the registration policy's constraints and pins the repository's ids.
 * Idempotent per repository id and name: a re-run returns the same agent, created: false.
 * The registration policy's own ids are pinned on its first success, as a trust policy's are.
 * The agent's scopes are at most the registration policy's (none when it names none).
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Agent } from '../agents/agent.js';
import { findRegisteredAgent, insertAgent } from '../agents/agent-store.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { readJsonOrForm } from '../http/body.js';
import { accessDenied, invalidRequest } from '../http/errors.js';
import { displayText, freeText } from '../http/validation.js';
import { scopeNotAvailable } from '../oauth/grantable-scopes.js';
import { KNOWN_SCOPES } from '../oauth/scopes.js';
import { admitGitHubIdToken, bindRepositoryIdentities, githubActor, provenanceOf, type GitHubGateDeps } from './id-token-gate.js';
import { matchRegistrationPolicy } from './match-trust-policy.js';
import type { GitHubClaims } from './verify-id-token.js';
import type { TrustPolicy } from './trust-policy.js';
import { findPoliciesFor, insertTrustPolicy } from './trust-policy-store.js';

const scopeList = z
  .union([z.array(z.string()), z.string().transform((value) => value.split(/[\s,]+/).filter(Boolean))])
  .pipe(z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length));
const registerBody = z.object({
  token: z.string().min(1).max(16_384),
  name: displayText(128),
  description: freeText(1024).optional(),
  scopes: scopeList.optional(),
});

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';

export function registerEndpoint(deps: GitHubGateDeps) {
  const { knex } = deps;
  return async function registerAgentFromWorkflow(ctx: Context): Promise<void> {
    const parsed = registerBody.safeParse(await readJsonOrForm(ctx));
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join('.') || 'body';
      throw invalidRequest(`The '${field}' parameter is missing or malformed.`);
    }
    const input = parsed.data;
    const claims = await admitGitHubIdToken(deps, input.token, 'oidc.register.refused', null);
    const actor = githubActor(claims);
    const provenance = provenanceOf(claims);
    const refuse = async (reason: string, error: Error) => {
      await appendAuditEvent(knex, { type: 'oidc.register.refused', actor, data: { reason, name: input.name, ...provenance } });
      return error;
    };

    const decision = matchRegistrationPolicy(claims, await findPoliciesFor(knex, claims.repository, null));
    if (!decision.isGranted) throw await refuse(decision.reason, accessDenied(decision.refusal));
    if (!claims.repository_id) throw await refuse('token has no repository_id', accessDenied('Trust policy violation'));
    // A registration policy is pinned like any other: a re-created repository or owner registers nothing.
    const bindingConflict = await bindRepositoryIdentities(knex, decision.bindings, { agentId: null, actor });
    if (bindingConflict) throw await refuse(bindingConflict, accessDenied('Trust policy violation'));
    const allowed = decision.scopes ?? [];
    const requested = input.scopes ? [...new Set(input.scopes)] : [...allowed];
    const refused = requested.find((scope) => !allowed.includes(scope));
    if (refused) throw await refuse(`scope ${refused} not allowed`, scopeNotAvailable(refused));

    const existing = await findRegisteredAgent(knex, claims.repository_id, input.name);
    if (existing) return respond(ctx, existing, false);
    try {
      const agent = await knex.transaction((trx) => registerAgent(trx, claims, decision.policies[0], input, requested));
      return respond(ctx, agent, true);
    } catch (error) {
      // A concurrent run registered the same name first: that agent is the answer.
      const winner = isUniqueViolation(error) && (await findRegisteredAgent(knex, claims.repository_id, input.name));
      if (!winner) throw error;
      return respond(ctx, winner, false);
    }
  };
}

async function registerAgent(
  trx: Knex.Transaction,
  claims: GitHubClaims,
  template: TrustPolicy,
  input: { name: string; description?: string },
  scopes: string[],
): Promise<Agent> {
  const agent = await insertAgent(trx, {
    id: crypto.randomUUID(),
    name: input.name,
    description: input.description ?? null,
    scopes,
    registeredRepositoryId: claims.repository_id,
    registeredRepository: claims.repository,
  });
  const policy = await insertTrustPolicy(trx, {
    provider: 'github',
    repository: claims.repository,
    agentId: agent.agentId,
    branch: template.branch,
    environment: template.environment,
    workflowRef: template.workflowRef,
    jobWorkflowRef: template.jobWorkflowRef,
    repositoryId: claims.repository_id,
    repositoryOwnerId: claims.repository_owner_id ?? template.repositoryOwnerId,
    allowedEvents: template.allowedEvents,
    scopes: null,
  });
  await appendAuditEvent(trx, {
    type: 'agent.registered',
    agentId: agent.agentId,
    actor: githubActor(claims),
    data: { name: agent.name, scopes, registrationPolicyId: template.id, trustPolicyId: policy.id, ...provenanceOf(claims) },
  });
  return agent;
}

function respond(ctx: Context, agent: Agent, created: boolean): void {
  ctx.status = created ? 201 : 200;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { ...agent, created };
}
