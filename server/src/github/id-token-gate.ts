/**
 * The first step of both GitHub services (exchange and registration): verify the ID token
 * against the configured issuer, then spend its jti. The jti insert is atomic, so of
 * concurrent uses of one token on any number of instances exactly one gets past here.
 * Refusals are audited with their precise reason and answered with a generic one.
 */
import type { Knex } from 'knex';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { appendAuditEvent, type AuditEventType } from '../audit/audit-log.js';
import { InvalidGrant, ServiceUnavailable } from '../errors.js';
import { IssuerUnavailableError, type GitHubJwks } from './jwks-cache.js';
import type { RunPrepared } from '../storage/prepared.js';
import type { IdentityBinding } from './match-trust-policy.js';
import { bindRepositoryIdentity } from './trust-policy-store.js';
import { spendJti } from './used-jti-store.js';
import { countUnverifiedRefusal, type GitHubEndpoint } from './unverified-refusals.js';
import { IdTokenRejectedError, verifyGitHubIdToken, type GitHubClaims, type IdTokenRejection } from './verify-id-token.js';

export interface GitHubGateDeps {
  readonly knex: Knex;
  readonly config: Config;
  readonly jwks: GitHubJwks;
  readonly query: RunPrepared;
  readonly clock: Clock;
  /** Told of each refusal before the signature was verified (a metric by reason). */
  readonly onUnverifiedRefusal?: (endpoint: GitHubEndpoint, reason: IdTokenRejection) => void;
}

export function issuerUnavailable(): ServiceUnavailable {
  return new ServiceUnavailable('The GitHub OIDC issuer cannot be reached. Please retry shortly.', 5);
}

export async function admitGitHubIdToken(
  deps: GitHubGateDeps,
  idToken: string,
  refusalType: AuditEventType,
  agentId: string | null,
): Promise<GitHubClaims> {
  const claims = await verifyIdTokenOrRefuse(deps, idToken, refusalType, agentId);
  if (!(await spendJti(deps.query, usedJtiKey(deps.config, claims), claims.exp))) throw await refuseReplay(deps.knex, claims, refusalType, agentId);
  return claims;
}

/**
 * Verifies an ID token. A signed token that is refused (expired, wrong audience…) is
 * audited with its precise reason; one refused before its signature was verified is only
 * counted (unverified-refusals.ts), and may be answered 429. Both are answered generically.
 */
export async function verifyIdTokenOrRefuse(
  deps: GitHubGateDeps,
  idToken: string,
  refusalType: AuditEventType,
  agentId: string | null,
): Promise<GitHubClaims> {
  try {
    return await verifyGitHubIdToken(idToken, {
      issuer: deps.config.githubOidcIssuer,
      audience: deps.config.oidcAudience,
      jwks: deps.jwks,
      now: new Date(deps.clock.now()),
    });
  } catch (error) {
    if (error instanceof IssuerUnavailableError) throw issuerUnavailable();
    if (!(error instanceof IdTokenRejectedError)) throw error;
    if (error.isUnverified) {
      const endpoint = refusalType === 'oidc.register.refused' ? 'register' : 'exchange';
      deps.onUnverifiedRefusal?.(endpoint, error.code);
      await countUnverifiedRefusal(deps.query, { endpoint, reason: error.code, agentId }, deps.config.rateLimitPerMinute, deps.clock.now());
    } else {
      await appendAuditEvent(deps.knex, { type: refusalType, agentId, actor: 'github:unverified', data: { reason: error.reason } });
    }
    throw new InvalidGrant('The GitHub ID token is invalid.');
  }
}

/** The key a spent ID token is remembered by until it expires: its issuer and jti. */
export function usedJtiKey(config: Config, claims: GitHubClaims): string {
  return `${config.githubOidcIssuer}#${claims.jti}`;
}

/** Audits a replayed ID token and returns the answer to throw. */
export async function refuseReplay(knex: Knex, claims: GitHubClaims, refusalType: AuditEventType, agentId: string | null): Promise<InvalidGrant> {
  await appendAuditEvent(knex, {
    type: refusalType,
    agentId,
    actor: githubActor(claims),
    data: { reason: 'jti already used (replay)', ...provenanceOf(claims) },
  });
  return new InvalidGrant('The GitHub ID token has already been used.');
}

/**
 * Pins the repository and owner ids the granted policies (trust or registration) did not
 * name yet, so that a re-created repository or owner of the same name is refused from then
 * on. Returns the audit reason to refuse with when a concurrent request pinned other ids first.
 */
export async function bindRepositoryIdentities(
  knex: Knex,
  bindings: readonly IdentityBinding[],
  audit: { readonly agentId: string | null; readonly orgId?: string; readonly actor: string },
): Promise<string | undefined> {
  for (const binding of bindings) {
    const outcome = await bindRepositoryIdentity(knex, binding);
    if (outcome === 'conflict') return `policy ${binding.policyId} was bound to another repository identity`;
    // Audited once, by the exchange that pinned it: concurrent first uses pin the same ids.
    if (outcome === 'bound') await appendAuditEvent(knex, { type: 'trust_policy.bound', agentId: audit.agentId, orgId: audit.orgId, actor: audit.actor, data: { ...binding } });
  }
  return undefined;
}

export function githubActor(claims: GitHubClaims): string {
  return `github:${claims.repository}`;
}

/** The workflow run behind a token: carried in the tokens we issue and in the audit log. */
export function provenanceOf(claims: GitHubClaims): Record<string, string> {
  const provenance: Record<string, string> = {};
  for (const name of ['repository', 'repository_id', 'repository_owner_id', 'ref', 'sha', 'workflow_ref', 'job_workflow_ref', 'event_name', 'environment', 'run_id', 'run_attempt', 'actor'] as const) {
    const value = claims[name];
    if (typeof value === 'string') provenance[name] = value;
  }
  return provenance;
}
