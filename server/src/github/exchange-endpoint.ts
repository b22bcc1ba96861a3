/**
 * POST /api/v1/oidc/token: a GitHub Actions ID token for an access token of one agent,
 * when a trust policy links the workflow to that agent (contract, "Trust policies").
 * An unknown agent is refused exactly like a policy violation; a suspended or
 * decommissioned one, only after a policy matched, with unauthorized_client.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEvent } from '../audit/audit-log.js';
import { readJsonOrForm } from '../http/body.js';
import { accessDenied, invalidRequest, unauthorizedClient } from '../http/errors.js';
import { quotable } from '../http/validation.js';
import { GrantGateClosed, type AccessTokens } from '../oauth/access-tokens.js';
import { grantableScopes, scopeNotAvailable } from '../oauth/grantable-scopes.js';
import { respondWithToken } from '../oauth/token-endpoint.js';
import { createExchangeAdmission } from './exchange-admission.js';
import { bindRepositoryIdentities, githubActor, provenanceOf, refuseReplay, verifyIdTokenOrRefuse, type GitHubGateDeps } from './id-token-gate.js';
import { matchTrustPolicy } from './match-trust-policy.js';

const exchangeBody = z.object({
  token: z.string().min(1).max(16_384),
  agentId: z.uuid(),
  scope: z.string().max(1024).optional(),
});

export function exchangeEndpoint(deps: GitHubGateDeps & { readonly tokens: AccessTokens }) {
  const { knex, tokens, query } = deps;
  const admitExchange = createExchangeAdmission(query, deps.config);
  return async function exchangeGitHubIdToken(ctx: Context): Promise<void> {
    const parsed = exchangeBody.safeParse(await readJsonOrForm(ctx));
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join('.') || 'body';
      throw invalidRequest(`The '${field}' parameter is missing or malformed.`);
    }
    const agentId = parsed.data.agentId.toLowerCase();
    const claims = await verifyIdTokenOrRefuse(deps, parsed.data.token, 'oidc.exchange.refused', agentId);
    const admission = await admitExchange(claims, agentId);
    if (admission.isReplay) throw await refuseReplay(knex, claims, 'oidc.exchange.refused', agentId);
    const actor = githubActor(claims);
    const provenance = provenanceOf(claims);
    const refuse = async (reason: string, error: Error) => {
      await appendAuditEvent(knex, { type: 'oidc.exchange.refused', agentId, actor, data: { reason, ...provenance } });
      return error;
    };

    const { agent } = admission;
    const decision = matchTrustPolicy(claims, admission.policies, agentId);
    if (!agent) throw await refuse('unknown agent', accessDenied('Trust policy violation'));
    if (!decision.isGranted) throw await refuse(decision.reason, accessDenied(decision.refusal));
    if (agent.status !== 'active') {
      throw await refuse(`agent is ${agent.status}`, unauthorizedClient(`Agent is ${agent.status} and cannot obtain tokens.`));
    }
    const bindingConflict = await bindRepositoryIdentities(knex, decision.bindings, { agentId, actor });
    if (bindingConflict) throw await refuse(bindingConflict, accessDenied('Trust policy violation'));

    const allowed = decision.scopes === null ? agent.scopes : agent.scopes.filter((scope) => decision.scopes?.includes(scope));
    const scopes = grantableScopes(parsed.data.scope, allowed);
    if (typeof scopes === 'string') throw await refuse(`scope ${quotable(scopes) ?? '(not shown)'} not allowed`, scopeNotAvailable(scopes));

    const issued = await tokens
      .issue({
        agentId,
        credentialId: null,
        grantType: 'github_oidc',
        scopes,
        extraClaims: provenance,
        audit: { type: 'oidc.exchange.granted', actor, data: { ...provenance, policyIds: decision.policies.map((policy) => policy.id) } },
      })
      .catch(async (error: unknown) => {
        // The agent was suspended, decommissioned or lost a scope since it was read.
        if (error instanceof GrantGateClosed) throw await refuse('agent changed during the exchange', unauthorizedClient('Agent cannot obtain tokens.'));
        throw error;
      });
    respondWithToken(ctx, issued, { expires_at: issued.expiresAt.toISOString() });
  };
}
