/**
 * Decides, from verified GitHub claims and the stored policies, whether a workflow may act
 * for an agent (or register one). Pure: no I/O, no clock. Never reads `sub`.
 *
 * Only policies of provider github, for exactly the requested agent (null: registration
 * policies) and for the claims' repository (ASCII case ignored) are considered. The token is
 * granted when at least one of them matches in full; it then gets the union of the matching
 * policies' scopes (a policy without scopes grants all of the agent's), since each matching
 * policy on its own would have let it in.
 *
 * A refusal is "Branch not permitted" when some considered policy fails on its branch and
 * on nothing else — the workflow is the right one, run from the wrong branch — and "Trust
 * policy violation" otherwise (no policy, or every policy fails on something besides the
 * branch, e.g. a re-created repository on the wrong branch). `reason` is precise and meant for
 * the audit log only: it names expected values, so it must never reach the HTTP answer.
 */
import { BRANCH_REFS, TAG_REFS, matchesRefPattern } from './ref-pattern.js';
import type { TrustPolicy } from './trust-policy.js';
import type { GitHubClaims } from './verify-id-token.js';

export type MatchableClaims = Pick<
  GitHubClaims,
  'repository' | 'repository_id' | 'repository_owner_id' | 'ref' | 'environment' | 'workflow_ref' | 'job_workflow_ref' | 'event_name'
>;

export type TrustPolicyConstraint =
  | 'repository'
  | 'repositoryId'
  | 'repositoryOwnerId'
  | 'branch'
  | 'tag'
  | 'environment'
  | 'workflowRef'
  | 'jobWorkflowRef'
  | 'event';

export interface PolicyMismatch {
  readonly constraint: TrustPolicyConstraint;
  readonly reason: string;
}

/** Ids a granted policy did not pin yet: the caller stores them, so they hold from then on. */
export interface IdentityBinding {
  readonly policyId: string;
  readonly repositoryId?: string;
  readonly repositoryOwnerId?: string;
}

export type TrustPolicyRefusal = 'Branch not permitted' | 'Trust policy violation';

export type TrustPolicyDecision =
  | {
      readonly isGranted: true;
      readonly policies: readonly TrustPolicy[];
      /** null: all of the agent's scopes. */
      readonly scopes: readonly string[] | null;
      readonly bindings: readonly IdentityBinding[];
    }
  | { readonly isGranted: false; readonly refusal: TrustPolicyRefusal; readonly reason: string };

// Events that run with the base repository's privileges on behalf of code, or a comment,
// its owners did not write: `issue_comment` is triggered by anyone who can comment.
const PRIVILEGED_EVENTS = new Set(['pull_request_target', 'workflow_run', 'issue_comment']);

export function matchTrustPolicy(claims: MatchableClaims, policies: readonly TrustPolicy[], agentId: string): TrustPolicyDecision {
  return decide(claims, policies, agentId);
}

/** Registration policies are the ones without an agent (`/oidc/register`). */
export function matchRegistrationPolicy(claims: MatchableClaims, policies: readonly TrustPolicy[]): TrustPolicyDecision {
  return decide(claims, policies, null);
}

function decide(claims: MatchableClaims, policies: readonly TrustPolicy[], agentId: string | null): TrustPolicyDecision {
  const considered = policies.filter(
    (policy) => policy.provider === 'github' && policy.agentId === agentId && isSameRepository(policy.repository, claims.repository),
  );
  if (considered.length === 0) {
    const subject = agentId === null ? 'registration policy' : `trust policy for agent ${quote(agentId)}`;
    return { isGranted: false, refusal: 'Trust policy violation', reason: `no ${subject} for repository ${quote(claims.repository)}` };
  }
  const evaluations = considered.map((policy) => ({ policy, mismatches: evaluateTrustPolicy(policy, claims) }));
  const granted = evaluations.filter(({ mismatches }) => mismatches.length === 0).map(({ policy }) => policy);
  if (granted.length > 0) {
    return { isGranted: true, policies: granted, scopes: unionOfScopes(granted), bindings: bindingsFor(granted, claims) };
  }
  const isBranchOnly = evaluations.some(({ mismatches }) => mismatches.every((m) => REF_CONSTRAINTS.has(m.constraint)));
  return {
    isGranted: false,
    refusal: isBranchOnly ? 'Branch not permitted' : 'Trust policy violation',
    reason: evaluations
      .map(({ policy, mismatches }) => `policy ${policy.id}: ${mismatches.map((m) => m.reason).join(', ')}`)
      .join('; '),
  };
}

/** Every constraint of one policy the claims fail; empty means the policy matches. */
export function evaluateTrustPolicy(policy: TrustPolicy, claims: MatchableClaims): PolicyMismatch[] {
  const mismatches: PolicyMismatch[] = [];
  const fail = (constraint: TrustPolicyConstraint, reason: string) => mismatches.push({ constraint, reason });
  const exact = (constraint: TrustPolicyConstraint, claim: keyof MatchableClaims, expected: string | null | undefined) => {
    if (expected === undefined || expected === null) return;
    const actual = claims[claim];
    if (actual === undefined) fail(constraint, `token has no ${claim}`);
    else if (actual !== expected) fail(constraint, `${claim} ${quote(actual)} is not ${quote(expected)}`);
  };

  if (!isSameRepository(policy.repository, claims.repository)) {
    fail('repository', `repository ${quote(claims.repository)} is not ${quote(policy.repository)}`);
  }
  // Unset ids still need the claim: they are bound from it, and a token without it cannot be told from a re-created repository.
  exact('repositoryId', 'repository_id', policy.repositoryId);
  if (isUnset(policy.repositoryId) && claims.repository_id === undefined) fail('repositoryId', 'token has no repository_id to bind');
  exact('repositoryOwnerId', 'repository_owner_id', policy.repositoryOwnerId);
  if (isUnset(policy.repositoryOwnerId) && claims.repository_owner_id === undefined) {
    fail('repositoryOwnerId', 'token has no repository_owner_id to bind');
  }
  const refMismatch = refMismatchOf(policy, claims.ref);
  if (refMismatch) mismatches.push(refMismatch);
  exact('environment', 'environment', policy.environment);
  exact('workflowRef', 'workflow_ref', policy.workflowRef);
  exact('jobWorkflowRef', 'job_workflow_ref', policy.jobWorkflowRef);
  if (claims.event_name === undefined) fail('event', 'token has no event_name');
  else if (PRIVILEGED_EVENTS.has(claims.event_name) && !policy.allowedEvents.includes(claims.event_name)) {
    fail('event', `event_name ${quote(claims.event_name)} is not in allowedEvents`);
  }
  return mismatches;
}

// The workflow is the right one, run from the wrong ref: "Branch not permitted".
const REF_CONSTRAINTS = new Set<TrustPolicyConstraint>(['branch', 'tag']);

/**
 * `branch`: `refs/heads/<branch>`; `tag`: `refs/tags/<tag>`; each exactly or by glob.
 * Neither: any branch, and never a tag or a pull request's `refs/pull/…` (CONTRACT.md).
 */
function refMismatchOf(policy: TrustPolicy, ref: string | undefined): PolicyMismatch | undefined {
  const [constraint, prefix, pattern] = isUnset(policy.tag)
    ? (['branch', BRANCH_REFS, policy.branch ?? '**'] as const)
    : (['tag', TAG_REFS, policy.tag] as const);
  if (ref === undefined) return { constraint, reason: 'token has no ref' };
  if (ref.startsWith(prefix) && matchesRefPattern(pattern, ref.slice(prefix.length))) return undefined;
  return { constraint, reason: `ref ${quote(ref)} is not ${quote(`${prefix}${pattern}`)}` };
}

/** Repository names are ASCII; Unicode case folding would let "K" (U+212A, Kelvin) pass for "k". */
export function isSameRepository(a: string, b: string): boolean {
  return toAsciiLowerCase(a) === toAsciiLowerCase(b);
}

function toAsciiLowerCase(value: string): string {
  return value.replace(/[A-Z]/g, (letter) => String.fromCharCode(letter.charCodeAt(0) + 32));
}

function isUnset(value: string | null | undefined): value is null | undefined {
  return value === undefined || value === null;
}

function unionOfScopes(policies: readonly TrustPolicy[]): readonly string[] | null {
  if (policies.some((policy) => policy.scopes === undefined || policy.scopes === null)) return null;
  return [...new Set(policies.flatMap((policy) => policy.scopes ?? []))];
}

function bindingsFor(policies: readonly TrustPolicy[], claims: MatchableClaims): IdentityBinding[] {
  return policies
    .filter((policy) => isUnset(policy.repositoryId) || isUnset(policy.repositoryOwnerId))
    .map((policy) => ({
      policyId: policy.id,
      ...(isUnset(policy.repositoryId) && { repositoryId: claims.repository_id }),
      ...(isUnset(policy.repositoryOwnerId) && { repositoryOwnerId: claims.repository_owner_id }),
    }));
}

function quote(value: string): string {
  const json = JSON.stringify(value);
  return json.length > 120 ? `${json.slice(0, 120)}…` : json;
}
