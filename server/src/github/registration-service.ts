/**
 * Registration from a workflow (/oidc/register): a workflow matching a registration policy
 * (one with no agentId) creates an agent owned by its repository, bound to it by a new
 * trust policy that carries the registration policy's constraints and pins the
 * repository's ids. Idempotent per repository id and name: a re-run returns the same
 * agent, created: false. The registration policy's own ids are pinned on its first
 * success, as a trust policy's are. The agent holds at most the registration policy's
 * scopes, which every registration policy names.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Agent } from '../agents/agent.js';
import { findRegisteredAgent, insertAgent } from '../agents/agent-store.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { AccessDenied, type ServiceError } from '../errors.js';
import { scopeNotAvailable } from '../oauth/grantable-scopes.js';
import { admitGitHubIdToken, bindRepositoryIdentities, githubActor, provenanceOf, type GitHubGateDeps } from './id-token-gate.js';
import { matchRegistrationPolicy } from './match-trust-policy.js';
import type { TrustPolicy } from './trust-policy.js';
import { findPoliciesFor, insertTrustPolicy } from './trust-policy-store.js';
import type { GitHubClaims } from './verify-id-token.js';

export interface RegistrationRequest {
  readonly name: string;
  readonly description?: string;
  /** Absent: every scope the registration policy allows. */
  readonly scopes?: readonly string[];
}

export type GitHubRegistration = (idToken: string, request: RegistrationRequest) => Promise<{ agent: Agent; created: boolean }>;

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';

export function createGitHubRegistration(deps: GitHubGateDeps): GitHubRegistration {
  const { knex } = deps;
  return async function register(idToken, request) {
    const claims = await admitGitHubIdToken(deps, idToken, 'oidc.register.refused', null);
    const actor = githubActor(claims);
    const provenance = provenanceOf(claims);
    const refuse = async (reason: string, error: ServiceError) => {
      await appendAuditEvent(knex, { type: 'oidc.register.refused', actor, data: { reason, name: request.name, ...provenance } });
      return error;
    };

    const decision = matchRegistrationPolicy(claims, await findPoliciesFor(knex, claims.repository, null));
    if (!decision.isGranted) throw await refuse(decision.reason, new AccessDenied(decision.refusal));
    if (!claims.repository_id) throw await refuse('token has no repository_id', new AccessDenied('Trust policy violation'));
    // A registration policy is pinned like any other: a re-created repository or owner registers nothing.
    const bindingConflict = await bindRepositoryIdentities(knex, decision.bindings, { agentId: null, actor });
    if (bindingConflict) throw await refuse(bindingConflict, new AccessDenied('Trust policy violation'));
    const allowed = decision.scopes ?? [];
    const requested = request.scopes ? [...new Set(request.scopes)] : [...allowed];
    const refused = requested.find((scope) => !allowed.includes(scope));
    if (refused) throw await refuse(`scope ${refused} not allowed`, scopeNotAvailable(refused));

    const existing = await findRegisteredAgent(knex, claims.repository_id, request.name);
    if (existing) return { agent: existing, created: false };
    try {
      const agent = await knex.transaction((trx) => registerAgent(trx, claims, decision.policies[0], request, requested));
      return { agent, created: true };
    } catch (error) {
      // A concurrent run registered the same name first: that agent is the answer.
      const winner = isUniqueViolation(error) && (await findRegisteredAgent(knex, claims.repository_id, request.name));
      if (!winner) throw error;
      return { agent: winner, created: false };
    }
  };
}

async function registerAgent(
  trx: Knex.Transaction,
  claims: GitHubClaims,
  template: TrustPolicy,
  request: RegistrationRequest,
  scopes: string[],
): Promise<Agent> {
  const agent = await insertAgent(trx, {
    id: crypto.randomUUID(),
    name: request.name,
    description: request.description ?? null,
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
