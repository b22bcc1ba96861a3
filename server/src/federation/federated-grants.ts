/**
 * The federated grants of POST /token: RFC 8693 token exchange and the RFC 7523 JWT bearer
 * grant. No client authentication: `client_id` names the agent to act as, and the partner's
 * token is the proof. A token that fails verification, an unknown agent and no matching
 * binding get one answer (`invalid_grant`); a suspended agent or organization is told
 * (`unauthorized_client`) only once a binding matched. A refusal never says what a
 * condition expected. Refusals before the token's signature verifies are only counted, as
 * on the GitHub endpoints; the others are audited in the agent's organization.
 */
import type { Knex } from 'knex';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { isUuid, type Config } from '../config.js';
import { InvalidGrant, ServiceUnavailable, UnauthorizedClient, quotable } from '../errors.js';
import { countUnverifiedRefusal } from '../github/unverified-refusals.js';
import type { IdTokenRejection } from '../github/verify-id-token.js';
import { createJtiSpending } from '../github/used-jti-store.js';
import { GrantGateClosed, GrantReplayed, type AccessTokens, type GrantRefusalReason, type IssuedToken } from '../oauth/access-tokens.js';
import { audienceFor } from '../oauth/audiences.js';
import { grantableScopes, scopeNotAvailable } from '../oauth/grantable-scopes.js';
import { Batcher, RETRY_ALONE_UNLESS_UNAVAILABLE } from '../storage/batcher.js';
import type { RunPrepared } from '../storage/prepared.js';
import { allHold } from './conditions.js';
import { grantContexts, type Binding, type GrantContext, type Partner } from './federation-store.js';
import { PartnerKeysUnavailable, type PartnerKeys } from './partner-keys.js';
import { acceptedUntil, inspectSubjectToken, SubjectTokenRejected, verifySubjectToken, type InspectedToken } from './verify-subject-token.js';

export type FederatedGrantType = 'token_exchange' | 'jwt_bearer';

export interface FederatedGrantRequest {
  readonly grantType: FederatedGrantType;
  /** The subject token (RFC 8693) or the assertion (RFC 7523). */
  readonly token: string;
  /** `client_id`: the agent to act as. */
  readonly agentId: string;
  readonly scope?: string;
  readonly resource?: string;
}

export interface FederatedGrantsDeps {
  readonly knex: Knex;
  readonly query: RunPrepared;
  readonly tokens: AccessTokens;
  readonly config: Config;
  readonly clock: Clock;
  readonly keys: PartnerKeys;
  readonly onUnverifiedRefusal?: (endpoint: FederatedGrantType, reason: IdTokenRejection) => void;
}

const INVALID = 'The subject token is invalid, or does not act for this client.';

export function createFederatedGrants(deps: FederatedGrantsDeps) {
  const { knex, config, clock } = deps;
  // Concurrent grants share one read of their contexts; a granted single-use token is spent by
  // issue_grants, a refused one by a statement of its own, also shared.
  const contexts = new Batcher<{ issuer: string; agentId: string | null }, GrantContext>((inputs) => grantContexts(deps.query, inputs), RETRY_ALONE_UNLESS_UNAVAILABLE);
  const spendJti = createJtiSpending(deps.query);

  /** The audiences that identify this server for an RFC 7523 assertion (§3): its issuer and token endpoint. */
  const serverAudiences = [config.publicUrl, `${config.publicUrl}/api/v1/token`];

  /** Counted (and past a limit answered 429), never audited: nothing ties the request to a tenant yet. */
  async function refuseUnverified(request: FederatedGrantRequest, code: IdTokenRejection, { isAgentNamed = true } = {}): Promise<never> {
    deps.onUnverifiedRefusal?.(request.grantType, code);
    const agentId = isAgentNamed && isUuid(request.agentId) ? request.agentId.toLowerCase() : null;
    await countUnverifiedRefusal(deps.query, { endpoint: request.grantType, reason: code, agentId }, config.rateLimitPerMinute, clock.now());
    throw new InvalidGrant(INVALID);
  }

  return async function grantFederated(request: FederatedGrantRequest): Promise<IssuedToken> {
    let inspected: InspectedToken;
    try {
      inspected = inspectSubjectToken(request.token);
    } catch (error) {
      if (error instanceof SubjectTokenRejected) return refuseUnverified(request, error.code);
      throw error;
    }
    const agentId = isUuid(request.agentId) ? request.agentId.toLowerCase() : null;
    // Read before the token is verified, and whatever it names: the same work for every token of an issuer.
    const { partners: candidates, agent } = await contexts.submit({ issuer: inspected.iss, agentId });
    let verified: Awaited<ReturnType<typeof verifySubjectToken>>;
    try {
      verified = await verifySubjectToken(inspected, candidates, {
        keys: deps.keys,
        nowMs: clock.now(),
        ...(request.grantType === 'jwt_bearer' && { serverAudiences }),
      });
    } catch (error) {
      if (error instanceof PartnerKeysUnavailable) throw new ServiceUnavailable("The partner's keys cannot be fetched; try again later.");
      if (!(error instanceof SubjectTokenRejected)) throw error;
      // Signed, and refused for its claims: counted like an unverified one (a partner's token
      // can be replayed at will, and each audit row would be the sender's to write).
      return refuseUnverified(request, error.code, { isAgentNamed: error.isUnverified });
    }
    const { claims, partners } = verified;
    const actor = `federation:${claims.iss}`;
    const provenance = { partner_iss: claims.iss, ...(typeof claims.sub === 'string' && { partner_sub: claims.sub }) };

    /** The single-use token this grant spends, once a binding matched (null: the partner's tokens are not single use). */
    let usedJti: { key: string; exp: number } | null = null;
    const refuse = async (reason: string, error: Error, orgId?: string, { usage }: { usage?: GrantRefusalReason } = {}): Promise<never> => {
      // Spent whatever the outcome, so that it cannot be retried: a replay is refused as one.
      if (usedJti && !(await spendJti(usedJti.key, usedJti.exp))) {
        usedJti = null;
        return refuse('jti replayed', new InvalidGrant(INVALID), orgId);
      }
      if (usage && orgId) deps.tokens.noteRefusal(orgId, usage);
      await appendAuditEvent(knex, {
        type: 'federation.exchange.refused',
        agentId: agent?.agentId ?? null,
        ...(orgId && { orgId }),
        actor,
        data: { reason, grantType: request.grantType, ...provenance },
      });
      throw error;
    };
    if (!agent) return refuseUnverified(request, 'claims', { isAgentNamed: false });

    const open = partners.filter((partner) => partner.orgIds.includes(agent.orgId));
    const bindingsOfAgent = agent.bindings.filter((binding) => open.some((partner) => partner.partnerId === binding.partnerId));
    // An agent with no binding to these partners is none of their business: counted, not written to its organization's log.
    if (bindingsOfAgent.length === 0) return refuseUnverified(request, 'claims', { isAgentNamed: false });
    const binding = firstMatching(bindingsOfAgent, claims);
    if (!binding) return refuse('no binding of the agent matches the token', new InvalidGrant(INVALID), agent.orgId);
    const partner = open.find((candidate) => candidate.partnerId === binding.partnerId) as Partner;

    // Single use where the partner's tokens are minted per request (after a binding matched:
    // a token for another agent is not spent by a wrong client_id).
    if (partner.singleUseJti) {
      if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256) return refuse('no jti', new InvalidGrant(INVALID), agent.orgId);
      // Keyed by issuer, as the GitHub exchange keys its own: a token spent at /oidc/token, or
      // through another partner of the same issuer, is spent here too.
      // Spent by the grant's own issue_grants, or by a refusal.
      // Remembered while the token can be accepted: a far-off `exp` (any finite number passes
      // verification) is bounded by the partner's token age.
      usedJti = { key: `${claims.iss}#${claims.jti}`, exp: acceptedUntil(claims, partner) };
    }
    if (agent.orgStatus !== 'active') {
      return refuse(`organization is ${agent.orgStatus}`, new UnauthorizedClient(`Organization is ${agent.orgStatus}.`), agent.orgId, { usage: 'org_inactive' });
    }
    if (agent.status !== 'active') {
      return refuse(`agent is ${agent.status}`, new UnauthorizedClient(`Agent is ${agent.status} and cannot obtain tokens.`), agent.orgId, { usage: 'agent_inactive' });
    }
    const allowed = binding.scopes === null ? agent.scopes : agent.scopes.filter((scope) => binding.scopes?.includes(scope));
    const scopes = grantableScopes(request.scope, allowed);
    if (typeof scopes === 'string') {
      return refuse(`scope ${quotable(scopes) ?? '(not shown)'} not allowed`, scopeNotAvailable(scopes), agent.orgId, { usage: 'invalid_scope' });
    }

    return deps.tokens
      .issue({
        agentId: agent.agentId,
        orgId: agent.orgId,
        credentialId: null,
        bindingId: binding.bindingId,
        partnerRevision: partner.revision,
        ...(usedJti && { usedJti }),
        ...(binding.maxTtlSeconds !== null && { ttlSeconds: binding.maxTtlSeconds }),
        grantType: request.grantType,
        scopes,
        audience: audienceFor(config, request.resource),
        extraClaims: { partner_id: partner.partnerId, ...provenance },
        audit: { type: 'federation.exchange.granted', actor, data: { partnerId: partner.partnerId, bindingId: binding.bindingId, ...provenance } },
      })
      .catch(async (error: unknown) => {
        // issue_grants spent the token, refusing or not.
        usedJti = null;
        if (error instanceof GrantReplayed) return refuse('jti replayed', new InvalidGrant(INVALID), agent.orgId);
        // The binding, its partner, the agent or its organization changed since they were read.
        if (error instanceof GrantGateClosed) return refuse('binding, partner or agent changed during the grant', new UnauthorizedClient('Agent cannot obtain tokens.'), agent.orgId);
        throw error;
      });
  };
}

function firstMatching(bindings: readonly Binding[], claims: Record<string, unknown>): Binding | undefined {
  return bindings.find((binding) => allHold(binding.conditions, claims));
}
