/**
 * The GitHub exchange: a GitHub Actions ID token for an access token of one agent, when a
 * trust policy links the workflow to that agent (contract, "Trust policies"). An unknown
 * agent is refused exactly like a policy violation; a suspended or decommissioned one,
 * only after a policy matched, with unauthorized_client. Every refusal is audited with
 * its precise reason.
 *
 * The ID token is single use, whatever the outcome: a granted exchange spends its jti in the
 * grant's own issue_grants (one commit), a refused one in its refusal, and a token spent
 * before is refused as a replay either way.
 */
import { appendAuditEvent } from '../audit/audit-log.js';
import { AccessDenied, quotable, UnauthorizedClient, type ServiceError } from '../errors.js';
import { GrantGateClosed, GrantReplayed, type AccessTokens, type GrantRefusalReason, type IssuedToken } from '../oauth/access-tokens.js';
import { audienceFor } from '../oauth/audiences.js';
import { grantableScopes, scopeNotAvailable } from '../oauth/grantable-scopes.js';
import { createExchangeAdmission } from './exchange-admission.js';
import { bindRepositoryIdentities, githubActor, provenanceOf, refuseReplay, usedJtiKey, verifyIdTokenOrRefuse, type GitHubGateDeps } from './id-token-gate.js';
import { matchTrustPolicy } from './match-trust-policy.js';
import { createJtiSpending } from './used-jti-store.js';

export type GitHubExchange = (idToken: string, agentId: string, requestedScope: string | undefined, resource?: string) => Promise<IssuedToken>;

export function createGitHubExchange(deps: GitHubGateDeps & { readonly tokens: AccessTokens }): GitHubExchange {
  const { knex, tokens } = deps;
  const admitExchange = createExchangeAdmission(deps.query);
  const spendJti = createJtiSpending(deps.query);
  return async function exchange(idToken, agentId, requestedScope, resource) {
    const claims = await verifyIdTokenOrRefuse(deps, idToken, 'oidc.exchange.refused', agentId);
    const usedJti = { key: usedJtiKey(deps.config, claims), exp: claims.exp };
    const admission = await admitExchange(claims, agentId);
    const actor = githubActor(claims);
    const provenance = provenanceOf(claims);
    const replay = () => refuseReplay(knex, claims, 'oidc.exchange.refused', agentId);
    /**
     * Spends the token (a replay is refused as one), counts the refusal for the organization's
     * usage, audits it and returns the answer to throw.
     */
    const refuse = async (reason: string, error: ServiceError, { isSpent = false, usage }: { isSpent?: boolean; usage?: GrantRefusalReason } = {}) => {
      if (!isSpent && !(await spendJti(usedJti.key, usedJti.exp))) return replay();
      if (usage && admission.agent) tokens.noteRefusal(admission.agent.orgId, usage);
      await appendAuditEvent(knex, { type: 'oidc.exchange.refused', agentId, actor, data: { reason, ...provenance } });
      return error;
    };

    const { agent } = admission;
    const decision = matchTrustPolicy(claims, admission.policies, agentId);
    if (!agent) throw await refuse('unknown agent', new AccessDenied('Trust policy violation'));
    if (!decision.isGranted) {
      // Counted for the organization only when it has a policy for this repository: naming
      // an agent from anywhere else says nothing about the organization's workflows.
      const usage = admission.policies.length > 0 ? 'trust_policy_violation' : undefined;
      throw await refuse(decision.reason, new AccessDenied(decision.refusal), { usage });
    }
    if (agent.orgStatus !== 'active') {
      throw await refuse(`organization is ${agent.orgStatus}`, new UnauthorizedClient(`Organization is ${agent.orgStatus}.`), { usage: 'org_inactive' });
    }
    if (agent.status !== 'active') {
      throw await refuse(`agent is ${agent.status}`, new UnauthorizedClient(`Agent is ${agent.status} and cannot obtain tokens.`), { usage: 'agent_inactive' });
    }
    // A policy's first use pins the repository's ids: only by a token not spent before, so it is spent first.
    const isSpentFirst = decision.bindings.length > 0;
    if (isSpentFirst && !(await spendJti(usedJti.key, usedJti.exp))) throw await replay();
    const bindingConflict = await bindRepositoryIdentities(knex, decision.bindings, { agentId, actor });
    if (bindingConflict) throw await refuse(bindingConflict, new AccessDenied('Trust policy violation'), { isSpent: true });

    const allowed = decision.scopes === null ? agent.scopes : agent.scopes.filter((scope) => decision.scopes?.includes(scope));
    const scopes = grantableScopes(requestedScope, allowed);
    if (typeof scopes === 'string') {
      throw await refuse(`scope ${quotable(scopes) ?? '(not shown)'} not allowed`, scopeNotAvailable(scopes), { isSpent: isSpentFirst, usage: 'invalid_scope' });
    }

    return tokens
      .issue({
        agentId,
        orgId: agent.orgId,
        credentialId: null,
        trustPolicyIds: decision.policies.map((policy) => policy.id),
        ...(!isSpentFirst && { usedJti }),
        grantType: 'github_oidc',
        scopes,
        audience: audienceFor(deps.config, resource),
        extraClaims: provenance,
        audit: { type: 'oidc.exchange.granted', actor, data: { ...provenance, policyIds: decision.policies.map((policy) => policy.id) } },
      })
      .catch(async (error: unknown) => {
        if (error instanceof GrantReplayed) throw await replay();
        // The agent was suspended, decommissioned or lost a scope, or a policy was deleted, since
        // they were read. issue_grants spent the token all the same.
        if (error instanceof GrantGateClosed) {
          throw await refuse('agent or trust policy changed during the exchange', new UnauthorizedClient('Agent cannot obtain tokens.'), { isSpent: true });
        }
        throw error;
      });
  };
}
