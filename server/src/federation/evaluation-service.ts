/**
 * Explains a decision without making it: for a partner's token (or, as a dry run, its
 * claims), which of the partner's checks hold and which bindings would match, condition by
 * condition with the expected and the actual value; for a GitHub ID token (or its claims),
 * which trust policies would admit it and why each other does not. Nothing is spent,
 * issued or audited. Results are limited to the caller's organization (all of them for a
 * platform admin:orgs caller): the expected values are the organization's own settings.
 */
import type { Knex } from 'knex';
import { decodeJwt } from 'jose';
import { requireScope, type Caller } from '../authorization/caller.js';
import { isCrossOrganization } from '../authorization/tenancy.js';
import type { Clock } from '../clock.js';
import { NotFound, ServiceUnavailable, ValidationFailed } from '../errors.js';
import type { GitHubJwks } from '../github/jwks-cache.js';
import { IssuerUnavailableError } from '../github/jwks-cache.js';
import { evaluateTrustPolicy, type MatchableClaims } from '../github/match-trust-policy.js';
import { findPoliciesFor } from '../github/trust-policy-store.js';
import { IdTokenRejectedError, verifyGitHubIdToken } from '../github/verify-id-token.js';
import { organizationIdFor } from '../tenancy/organization-scope.js';
import { evaluateConditions, type ConditionResult } from './conditions.js';
import { findPartner, listBindings, type Partner } from './federation-store.js';
import { PartnerKeysUnavailable, type PartnerKeys } from './partner-keys.js';
import { SubjectTokenRejected, verifySubjectToken } from './verify-subject-token.js';

export interface EvaluationInput {
  /** A token to verify (nothing of it is spent), or, for a dry run, the claims alone. */
  readonly token?: string;
  readonly claims?: Record<string, unknown>;
  /** Only this agent's bindings or trust policies. */
  readonly agentId?: string;
}

export interface TokenCheck {
  /** null: a dry run on claims, no token to verify. */
  readonly isVerified: boolean | null;
  /** Why the token does not verify (signature, issuer, audience, age…). */
  readonly reason?: string;
}

export interface PartnerEvaluation {
  readonly partnerId: string;
  readonly token: TokenCheck;
  readonly requiredClaims: ConditionResult[];
  readonly bindings: { readonly bindingId: string; readonly agentId: string; readonly isMatch: boolean; readonly conditions: ConditionResult[] }[];
  /** Whether a grant for one of these bindings would pass the partner's checks and a binding (agent and organization status aside). */
  readonly wouldGrant: boolean;
}

export interface TrustPolicyEvaluation {
  readonly token: TokenCheck;
  readonly policies: { readonly policyId: string; readonly agentId: string | null; readonly isMatch: boolean; readonly mismatches: { constraint: string; reason: string }[] }[];
}

export interface EvaluationServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
  readonly partnerKeys: PartnerKeys;
  readonly githubJwks: GitHubJwks;
  readonly githubIssuer: string;
  readonly oidcAudience: string;
}

export class EvaluationService {
  constructor(private readonly deps: EvaluationServiceDeps) {}

  async evaluatePartner(caller: Caller, partnerId: string, input: EvaluationInput): Promise<PartnerEvaluation> {
    requireScope(caller, 'agents:read');
    const { token, claims: dryRunClaims } = exactlyOne(input);
    const orgScope = isCrossOrganization(caller) ? undefined : await organizationIdFor(this.deps.knex, caller);
    const partner = await findPartner(this.deps.knex, partnerId);
    if (!partner || (orgScope !== undefined && !partner.orgIds.includes(orgScope))) throw new NotFound('Partner');

    const { check, claims } = token === undefined ? { check: { isVerified: null }, claims: dryRunClaims as Record<string, unknown> } : await this.verifyForPartner(token, partner);
    const requiredClaims = evaluateConditions(partner.requiredClaims, claims);
    const orgIds = orgScope !== undefined ? [orgScope] : partner.orgIds;
    const bindings = [];
    for (const orgId of orgIds) {
      const page = await listBindings(this.deps.knex, { orgId, partnerId, agentId: input.agentId, limit: 100 });
      for (const binding of page.bindings) {
        const conditions = evaluateConditions(binding.conditions, claims);
        bindings.push({ bindingId: binding.bindingId, agentId: binding.agentId, isMatch: conditions.every((result) => result.isMet), conditions });
      }
    }
    const isPartnerOk = check.isVerified !== false && partner.status === 'active' && requiredClaims.every((result) => result.isMet);
    return { partnerId, token: check, requiredClaims, bindings, wouldGrant: isPartnerOk && bindings.some((binding) => binding.isMatch) };
  }

  async evaluateTrustPolicies(caller: Caller, input: EvaluationInput): Promise<TrustPolicyEvaluation> {
    requireScope(caller, 'agents:read');
    const { token, claims: dryRunClaims } = exactlyOne(input);
    const orgScope = isCrossOrganization(caller) ? undefined : await organizationIdFor(this.deps.knex, caller);
    const { check, claims } = token === undefined ? { check: { isVerified: null }, claims: dryRunClaims as Record<string, unknown> } : await this.verifyGitHub(token);
    if (typeof claims.repository !== 'string') throw new ValidationFailed('The claims name no repository.', {}, { field: 'claims' });
    const candidates = [
      ...(await findPoliciesFor(this.deps.knex, claims.repository, input.agentId ?? null)),
      ...(input.agentId === undefined ? [] : await findPoliciesFor(this.deps.knex, claims.repository, null)),
    ];
    const policies = candidates
      .filter((policy) => orgScope === undefined || policy.orgId === orgScope)
      .map((policy) => {
        const mismatches = evaluateTrustPolicy(policy, claims as unknown as MatchableClaims);
        return { policyId: policy.id, agentId: policy.agentId, isMatch: mismatches.length === 0, mismatches };
      });
    return { token: check, policies };
  }

  private async verifyForPartner(token: string, partner: Partner): Promise<{ check: TokenCheck; claims: Record<string, unknown> }> {
    try {
      const verified = await verifySubjectToken(token, [partner], { keys: this.deps.partnerKeys, nowMs: this.deps.clock.now() });
      return { check: { isVerified: true }, claims: verified.claims as Record<string, unknown> };
    } catch (error) {
      if (error instanceof PartnerKeysUnavailable) throw new ServiceUnavailable("The partner's keys cannot be fetched; try again later.");
      if (!(error instanceof SubjectTokenRejected)) throw error;
      return { check: { isVerified: false, reason: error.reason }, claims: unverifiedClaims(token) };
    }
  }

  private async verifyGitHub(token: string): Promise<{ check: TokenCheck; claims: Record<string, unknown> }> {
    try {
      const claims = await verifyGitHubIdToken(token, {
        issuer: this.deps.githubIssuer,
        audience: this.deps.oidcAudience,
        jwks: this.deps.githubJwks,
        now: new Date(this.deps.clock.now()),
      });
      return { check: { isVerified: true }, claims };
    } catch (error) {
      if (error instanceof IssuerUnavailableError) throw new ServiceUnavailable('The GitHub OIDC issuer cannot be reached; try again later.');
      if (!(error instanceof IdTokenRejectedError)) throw error;
      return { check: { isVerified: false, reason: error.reason }, claims: unverifiedClaims(token) };
    }
  }
}

function exactlyOne(input: EvaluationInput): EvaluationInput {
  if ((input.token === undefined) === (input.claims === undefined)) {
    throw new ValidationFailed('Send a token, or claims for a dry run: one of the two.');
  }
  return input;
}

/** What a token that did not verify says of itself, shown as such. */
function unverifiedClaims(token: string): Record<string, unknown> {
  try {
    return decodeJwt(token) as Record<string, unknown>;
  } catch {
    return {};
  }
}
