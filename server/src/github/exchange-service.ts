/**
 * The GitHub exchange: a GitHub Actions ID token for an access token of one agent, when a
 * trust policy links the workflow to that agent (contract, "Trust policies"). An unknown
 * agent is refused exactly like a policy violation; a suspended or decommissioned one,
 * only after a policy matched, with unauthorized_client. Every refusal is audited with
 * its precise reason.
 */
import { appendAuditEvent } from '../audit/audit-log.js';
import { AccessDenied, quotable, UnauthorizedClient, type ServiceError } from '../errors.js';
import { GrantGateClosed, type AccessTokens, type IssuedToken } from '../oauth/access-tokens.js';
import { audienceFor } from '../oauth/audiences.js';
import { grantableScopes, scopeNotAvailable } from '../oauth/grantable-scopes.js';
import { createExchangeAdmission } from './exchange-admission.js';
import { bindRepositoryIdentities, githubActor, provenanceOf, refuseReplay, verifyIdTokenOrRefuse, type GitHubGateDeps } from './id-token-gate.js';
import { matchTrustPolicy } from './match-trust-policy.js';

export type GitHubExchange = (idToken: string, agentId: string, requestedScope: string | undefined, resource?: string) => Promise<IssuedToken>;

export function createGitHubExchange(deps: GitHubGateDeps & { readonly tokens: AccessTokens }): GitHubExchange {
  const { knex, tokens } = deps;
  const admitExchange = createExchangeAdmission(deps.query, deps.config);
  return async function exchange(idToken, agentId, requestedScope, resource) {
    const claims = await verifyIdTokenOrRefuse(deps, idToken, 'oidc.exchange.refused', agentId);
    const admission = await admitExchange(claims, agentId);
    if (admission.isReplay) throw await refuseReplay(knex, claims, 'oidc.exchange.refused', agentId);
    const actor = githubActor(claims);
    const provenance = provenanceOf(claims);
    const refuse = async (reason: string, error: ServiceError) => {
      await appendAuditEvent(knex, { type: 'oidc.exchange.refused', agentId, actor, data: { reason, ...provenance } });
      return error;
    };

    const { agent } = admission;
    const decision = matchTrustPolicy(claims, admission.policies, agentId);
    if (!agent) throw await refuse('unknown agent', new AccessDenied('Trust policy violation'));
    if (!decision.isGranted) {
      // Counted for the organization only when it has a policy for this repository: naming
      // an agent from anywhere else says nothing about the organization's workflows.
      if (admission.policies.length > 0) tokens.noteRefusal(agent.orgId, 'trust_policy_violation');
      throw await refuse(decision.reason, new AccessDenied(decision.refusal));
    }
    if (agent.orgStatus !== 'active') {
      tokens.noteRefusal(agent.orgId, 'org_inactive');
      throw await refuse(`organization is ${agent.orgStatus}`, new UnauthorizedClient(`Organization is ${agent.orgStatus}.`));
    }
    if (agent.status !== 'active') {
      tokens.noteRefusal(agent.orgId, 'agent_inactive');
      throw await refuse(`agent is ${agent.status}`, new UnauthorizedClient(`Agent is ${agent.status} and cannot obtain tokens.`));
    }
    const bindingConflict = await bindRepositoryIdentities(knex, decision.bindings, { agentId, actor });
    if (bindingConflict) throw await refuse(bindingConflict, new AccessDenied('Trust policy violation'));

    const allowed = decision.scopes === null ? agent.scopes : agent.scopes.filter((scope) => decision.scopes?.includes(scope));
    const scopes = grantableScopes(requestedScope, allowed);
    if (typeof scopes === 'string') {
      tokens.noteRefusal(agent.orgId, 'invalid_scope');
      throw await refuse(`scope ${quotable(scopes) ?? '(not shown)'} not allowed`, scopeNotAvailable(scopes));
    }

    return tokens
      .issue({
        agentId,
        orgId: agent.orgId,
        credentialId: null,
        trustPolicyIds: decision.policies.map((policy) => policy.id),
        grantType: 'github_oidc',
        scopes,
        audience: audienceFor(deps.config, resource),
        extraClaims: provenance,
        audit: { type: 'oidc.exchange.granted', actor, data: { ...provenance, policyIds: decision.policies.map((policy) => policy.id) } },
      })
      .catch(async (error: unknown) => {
        // The agent was suspended, decommissioned or lost a scope, or a policy was deleted, since they were read.
        if (error instanceof GrantGateClosed) {
          throw await refuse('agent or trust policy changed during the exchange', new UnauthorizedClient('Agent cannot obtain tokens.'));
        }
        throw error;
      });
  };
}
