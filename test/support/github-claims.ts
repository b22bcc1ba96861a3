/**
 * The named GitHub claim sets of action-fixtures/claims (see its README). They carry no
 * iss, aud, iat, nbf, exp or jti: the fake issuer fills those in when it mints a token.
 */
import { readFileSync } from 'node:fs';
import type { GitHubClaims } from '../../server/src/github/verify-id-token.js';

export type ClaimFixtureName =
  | 'push-main'
  | 'push-feature-branch'
  | 'tag'
  | 'pull-request'
  | 'pull-request-target'
  | 'issue-comment'
  | 'workflow-run'
  | 'environment-production'
  | 'reusable-workflow'
  | 'recreated-repository'
  | 'recreated-owner';

export type GitHubClaimSet = Partial<GitHubClaims> & Record<string, unknown>;

const FIXTURES = new URL('../../action-fixtures/claims/', import.meta.url);

export function loadClaimFixture(name: ClaimFixtureName): GitHubClaimSet {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as GitHubClaimSet;
}
