/**
 * Registration from a workflow (/oidc/register): a workflow matching a registration policy
 * (one with no agentId) creates an agent owned by its repository, bound to it by a new
 * trust policy that carries the registration policy's constraints and pins the
 * repository's ids. Idempotent per repository id and name: a re-run returns the same
 * agent, created: false. The registration policy's own ids are pinned on its first
 * success, as a trust policy's are.
 *
 * When several registration policies match, the registration follows one of them, never a
 * mix: the requested scopes must all be within one matching policy, and that policy (its
 * constraints, and the scopes granted) is the template of the trust policy created, so a
 * loose policy's constraints cannot carry a strict policy's scopes. Without a request, the
 * matching policy granting the fewest scopes is the template (ties: the lowest id).
 *
 * Registration policies belong to an organization, and so does the agent: a repository
 * that registration policies of two organizations name registers in neither (whichever
 * matches), and re-runs are idempotent per (organization, repository id, name). The
 * organization must be active and below its maxAgents. Policies of decommissioned
 * organizations no longer count.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Agent } from '../agents/agent.js';
import { findRegisteredAgent, insertAgent } from '../agents/agent-store.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { AccessDenied, Conflict, Forbidden, InvalidScope, UnauthorizedClient, type ServiceError } from '../errors.js';
import type { Organization } from '../tenancy/organization.js';
import { findOrganization } from '../tenancy/organization-store.js';
import { assertMayAddAgent } from '../tenancy/organization-scope.js';
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

type TemplateChoice = { readonly template: TrustPolicy; readonly scopes: string[] } | { readonly refused: string | undefined };

/** The one matching registration policy the agent is made after; `refused` names a scope no matching policy allows. */
export function chooseTemplate(policies: readonly TrustPolicy[], requested: readonly string[] | undefined): TemplateChoice {
  const allowedBy = (policy: TrustPolicy) => policy.scopes ?? [];
  const fitting = requested ? policies.filter((policy) => requested.every((scope) => allowedBy(policy).includes(scope))) : [...policies];
  if (fitting.length === 0) {
    return { refused: requested?.find((scope) => !policies.some((policy) => allowedBy(policy).includes(scope))) };
  }
  const [template] = fitting.sort((a, b) => allowedBy(a).length - allowedBy(b).length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { template, scopes: requested ? [...new Set(requested)] : [...allowedBy(template)] };
}

export function createGitHubRegistration(deps: GitHubGateDeps): GitHubRegistration {
  const { knex } = deps;
  return async function register(idToken, request) {
    const claims = await admitGitHubIdToken(deps, idToken, 'oidc.register.refused', null);
    const actor = githubActor(claims);
    const provenance = provenanceOf(claims);
    const stored = await findPoliciesFor(knex, claims.repository, null);
    // Refusals are the organization's whose policies name this repository, when there is one
    // (else the platform's: no tenant learns of another's workflow).
    const consideredOrgs = new Set(stored.map((policy) => policy.orgId));
    const orgId = consideredOrgs.size === 1 ? ([...consideredOrgs][0] as string) : undefined;
    const refuse = async (reason: string, error: ServiceError) => {
      await appendAuditEvent(knex, { type: 'oidc.register.refused', orgId, actor, data: { reason, name: request.name, ...provenance } });
      return error;
    };

    // An agent belongs to one organization, and a repository registers into one: when
    // registration policies of several name it, it registers in none, whichever of them
    // matches. Otherwise another tenant could write a looser policy for someone else's
    // repository and catch the runs that the owner's own policy leaves out.
    if (consideredOrgs.size > 1) throw await refuse('registration policies of several organizations name this repository', new AccessDenied('Trust policy violation'));
    const decision = matchRegistrationPolicy(claims, stored);
    if (!decision.isGranted || orgId === undefined) throw await refuse(decision.isGranted ? 'no registration policy' : decision.reason, new AccessDenied(decision.isGranted ? 'Trust policy violation' : decision.refusal));
    const org = await findOrganization(knex, orgId);
    if (!org || org.status !== 'active') {
      throw await refuse(`organization is ${org?.status ?? 'missing'}`, new UnauthorizedClient(`Organization is ${org?.status ?? 'unavailable'}.`));
    }
    if (!claims.repository_id) throw await refuse('token has no repository_id', new AccessDenied('Trust policy violation'));
    // A registration policy is pinned like any other: a re-created repository or owner registers nothing.
    const bindingConflict = await bindRepositoryIdentities(knex, decision.bindings, { agentId: null, orgId, actor });
    if (bindingConflict) throw await refuse(bindingConflict, new AccessDenied('Trust policy violation'));
    const choice = chooseTemplate(decision.policies, request.scopes);
    if ('refused' in choice) {
      const error = choice.refused ? scopeNotAvailable(choice.refused) : new InvalidScope('The requested scopes are not available together under one registration policy.');
      throw await refuse(choice.refused ? `scope ${choice.refused} not allowed` : 'requested scopes span several registration policies', error);
    }
    const { template, scopes: requested } = choice;

    const existing = await findRegisteredAgent(knex, orgId, claims.repository_id, request.name);
    if (existing) return { agent: existing, created: false };
    try {
      const agent = await knex.transaction((trx) => registerAgent(trx, org, claims, template, request, requested));
      return { agent, created: true };
    } catch (error) {
      // The organization reached maxAgents, or was suspended, since it was read.
      if (error instanceof Forbidden || error instanceof Conflict) throw await refuse(error.message, new AccessDenied(error.message));
      // A concurrent run registered the same name first: that agent is the answer.
      const winner = isUniqueViolation(error) && (await findRegisteredAgent(knex, orgId, claims.repository_id, request.name));
      if (!winner) throw error;
      return { agent: winner, created: false };
    }
  };
}

async function registerAgent(
  trx: Knex.Transaction,
  org: Organization,
  claims: GitHubClaims,
  template: TrustPolicy,
  request: RegistrationRequest,
  scopes: string[],
): Promise<Agent> {
  // Locked, so that concurrent registrations and creations count each other against maxAgents.
  const locked = await findOrganization(trx, org.orgId, true);
  if (!locked) throw new Conflict('The organization is gone.');
  await assertMayAddAgent(trx, locked, scopes);
  const agent = await insertAgent(trx, {
    id: crypto.randomUUID(),
    orgId: org.orgId,
    name: request.name,
    description: request.description ?? null,
    scopes,
    registeredRepositoryId: claims.repository_id,
    registeredRepository: claims.repository,
  });
  const policy = await insertTrustPolicy(trx, {
    orgId: org.orgId,
    provider: 'github',
    repository: claims.repository,
    agentId: agent.agentId,
    branch: template.branch,
    tag: template.tag,
    environment: template.environment,
    workflowRef: template.workflowRef,
    jobWorkflowRef: template.jobWorkflowRef,
    repositoryId: claims.repository_id,
    repositoryOwnerId: claims.repository_owner_id ?? template.repositoryOwnerId,
    allowedEvents: template.allowedEvents,
    scopes,
  });
  await appendAuditEvent(trx, {
    type: 'agent.registered',
    agentId: agent.agentId,
    actor: githubActor(claims),
    data: { name: agent.name, scopes, registrationPolicyId: template.id, trustPolicyId: policy.id, ...provenanceOf(claims) },
  });
  return agent;
}
