/** Factories for the github tests (candidates for test/support once the lead merges). */
import type { MatchableClaims } from '../../server/src/github/match-trust-policy.js';
import type { TrustPolicy } from '../../server/src/github/trust-policy.js';
import { loadClaimFixture, type ClaimFixtureName } from '../support/github-claims.js';

export const AGENT = '0b9d6c3e-8c1a-4f5e-9a57-2f0e4c1d7b21';
export const OTHER_AGENT = '7f3e2a10-5b6c-4d8e-9f01-a2b3c4d5e6f7';

export function createTrustPolicy(overrides: Partial<TrustPolicy> = {}): TrustPolicy {
  return { id: 'policy-1', provider: 'github', repository: 'octo-org/octo-repo', agentId: AGENT, allowedEvents: [], ...overrides };
}

/** A fixture's claims with overrides; an override of `undefined` removes the claim. */
export function claimsOf(name: ClaimFixtureName = 'push-main', overrides: Record<string, unknown> = {}): MatchableClaims {
  const merged: Record<string, unknown> = { ...loadClaimFixture(name), ...overrides };
  for (const [claim, value] of Object.entries(merged)) if (value === undefined) delete merged[claim];
  return merged as unknown as MatchableClaims;
}
