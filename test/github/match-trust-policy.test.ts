import fc from 'fast-check';
import { SEED } from '../support/fast-check.js';
import { matchTrustPolicy, type TrustPolicyDecision } from '../../server/src/github/match-trust-policy.js';
import type { ClaimFixtureName } from '../support/github-claims.js';
import { AGENT, OTHER_AGENT, claimsOf as claims, createTrustPolicy as policy } from './factories.js';

function refusal(decision: TrustPolicyDecision): string | undefined {
  return decision.isGranted ? undefined : decision.refusal;
}

describe('matchTrustPolicy: repository', () => {
  it('grants a push to main when the policy names only the repository', () => {
    const decision = matchTrustPolicy(claims(), [policy()], AGENT);
    expect(decision).toEqual({
      isGranted: true,
      policies: [policy()],
      scopes: null,
      bindings: [{ policyId: 'policy-1', repositoryId: '892312441', repositoryOwnerId: '119938721' }],
    });
  });

  it('grants when the repository name differs only in ASCII case', () => {
    expect(matchTrustPolicy(claims('push-main', { repository: 'Octo-Org/OCTO-repo' }), [policy()], AGENT).isGranted).toBe(true);
  });

  it.each([
    ['a Kelvin sign (U+212A) for k', 'octo-org/\u212Aiosk', 'octo-org/kiosk'],
    ['a dotted capital I (U+0130) for i', 'octo-org/\u0130ssues', 'octo-org/issues'],
    ['a fullwidth letter', 'octo-org/\uFF4Fcto-repo', 'octo-org/octo-repo'],
  ])('refuses a repository that only Unicode case folding would equate: %s', (_, claimed, policyRepository) => {
    const decision = matchTrustPolicy(claims('push-main', { repository: claimed }), [policy({ repository: policyRepository })], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: `no trust policy for agent "${AGENT}" for repository ${JSON.stringify(claimed)}`,
    });
  });

  it.each(['octo-org/octo-repo-evil', 'octo-org-evil/octo-repo', 'octo-org/octo-rep', 'octo-org/octo-repo/', 'evil/octo-org/octo-repo'])(
    'refuses the look-alike repository %s',
    (repository) => {
      expect(refusal(matchTrustPolicy(claims('push-main', { repository }), [policy()], AGENT))).toBe('Trust policy violation');
    },
  );

  it('refuses an agent that only other agents’ policies name, like an unknown agent', () => {
    const forOther = matchTrustPolicy(claims(), [policy({ agentId: OTHER_AGENT })], AGENT);
    const forNobody = matchTrustPolicy(claims(), [], AGENT);
    expect(forOther).toEqual(forNobody);
    expect(refusal(forOther)).toBe('Trust policy violation');
  });

  it('never reads sub: a sub naming another repository changes nothing', () => {
    const decision = matchTrustPolicy(claims('push-main', { sub: 'repo:evil/evil:ref:refs/heads/main' }), [policy()], AGENT);
    expect(decision.isGranted).toBe(true);
  });

  it('never reads sub: a sub naming the allowed branch does not make up for the ref', () => {
    const decision = matchTrustPolicy(
      claims('push-feature-branch', { sub: 'repo:octo-org/octo-repo:ref:refs/heads/main' }),
      [policy({ branch: 'main' })],
      AGENT,
    );
    expect(refusal(decision)).toBe('Branch not permitted');
  });
});

describe('matchTrustPolicy: branch', () => {
  it('grants a push to the allowed branch', () => {
    expect(matchTrustPolicy(claims(), [policy({ branch: 'main' })], AGENT).isGranted).toBe(true);
  });

  it('grants a branch whose name has a slash', () => {
    expect(matchTrustPolicy(claims('push-feature-branch'), [policy({ branch: 'feature/login' })], AGENT).isGranted).toBe(true);
  });

  it.each([
    ['a tag of the allowed branch name', 'refs/tags/main'],
    ['a longer branch name starting with the allowed one', 'refs/heads/main-evil'],
    ['a branch below the allowed one', 'refs/heads/main/x'],
    ['the allowed branch in another case', 'refs/heads/Main'],
    ['a pull request merge ref', 'refs/pull/17/merge'],
    ['the bare branch name', 'main'],
    ['a nested refs/heads prefix', 'refs/heads/refs/heads/main'],
    ['a trailing space', 'refs/heads/main '],
    ['an empty ref', ''],
  ])('refuses a token whose ref is %s', (_, ref) => {
    const decision = matchTrustPolicy(claims('push-main', { ref }), [policy({ branch: 'main' })], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Branch not permitted',
      reason: `policy policy-1: ref ${JSON.stringify(ref)} is not "refs/heads/main"`,
    });
  });

  it('refuses a tag push against a branch policy (fixture tag)', () => {
    expect(refusal(matchTrustPolicy(claims('tag'), [policy({ branch: 'main' })], AGENT))).toBe('Branch not permitted');
  });

  it('refuses a token without ref when the policy names a branch', () => {
    const decision = matchTrustPolicy(claims('push-main', { ref: undefined }), [policy({ branch: 'main' })], AGENT);
    expect(decision).toMatchObject({ isGranted: false, reason: 'policy policy-1: token has no ref' });
  });

  it.each<ClaimFixtureName>(['push-main', 'push-feature-branch'])('grants any branch (%s) when the policy names no branch', (name) => {
    expect(matchTrustPolicy(claims(name), [policy({ branch: null })], AGENT).isGranted).toBe(true);
  });

  it.each<ClaimFixtureName>(['tag', 'pull-request'])('refuses a %s ref when the policy names no branch: "any branch" is refs/heads/* only', (name) => {
    const decision = matchTrustPolicy(claims(name), [policy({ branch: null })], AGENT);
    expect(decision).toMatchObject({ isGranted: false, refusal: 'Branch not permitted' });
  });

  it.each([
    ['release/*', 'refs/heads/release/v1', true],
    ['release/*', 'refs/heads/release/', true],
    ['release/*', 'refs/heads/release/v1/hotfix', false],
    ['release/*', 'refs/heads/release', false],
    ['release/*', 'refs/heads/Release/v1', false],
    ['release/*', 'refs/tags/release/v1', false],
    ['release/**', 'refs/heads/release/v1/hotfix', true],
    ['**', 'refs/heads/any/where/at/all', true],
    ['**', 'refs/tags/v1', false],
    ['feature-*', 'refs/heads/feature-login', true],
    ['feature-*', 'refs/heads/feature-a/b', false],
    ['main', 'refs/heads/main', true],
    // Only `*` is special: the rest of a pattern, dots and brackets included, is itself.
    ['v1.*', 'refs/heads/v1.2', true],
    ['v1.*', 'refs/heads/v1x2', false],
    ['a+b', 'refs/heads/a+b', true],
    ['a+b', 'refs/heads/aab', false],
    ['(x|y)', 'refs/heads/x', false],
  ])('branch pattern %s against %s: %s', (branch, ref, isGranted) => {
    expect(matchTrustPolicy(claims('push-main', { ref }), [policy({ branch })], AGENT).isGranted).toBe(isGranted);
  });

  it('refuses every ref other than exactly refs/heads/<branch> (property)', () => {
    fc.assert(
      fc.property(fc.string(), (ref) => {
        fc.pre(ref !== 'refs/heads/main');
        return !matchTrustPolicy(claims('push-main', { ref }), [policy({ branch: 'main' })], AGENT).isGranted;
      }),
      SEED,
    );
  });

  it('a branch glob never grants a tag, a pull request or a ref outside refs/heads/ (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom('*', '**', 'release/*', 'release/**', 'v*'), fc.string(), (branch, rest) => {
        fc.pre(!rest.startsWith('heads/'));
        return !matchTrustPolicy(claims('push-main', { ref: `refs/${rest}` }), [policy({ branch })], AGENT).isGranted;
      }),
      SEED,
    );
  });

  it('grants every ASCII case variant of the repository name (property)', () => {
    const letters = [...'octo-org/octo-repo'];
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: letters.length, maxLength: letters.length }), (upper) => {
        const repository = letters.map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
        return matchTrustPolicy(claims('push-main', { repository }), [policy()], AGENT).isGranted;
      }),
      SEED,
    );
  });
});

describe('matchTrustPolicy: repository and owner ids', () => {
  const pinned = policy({ repositoryId: '892312441', repositoryOwnerId: '119938721' });

  it('grants the pinned repository and asks for no binding', () => {
    expect(matchTrustPolicy(claims(), [pinned], AGENT)).toMatchObject({ isGranted: true, bindings: [] });
  });

  it('refuses a deleted and re-created repository of the same name', () => {
    const decision = matchTrustPolicy(claims('recreated-repository'), [pinned], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: 'policy policy-1: repository_id "905551230" is not "892312441"',
    });
  });

  it('refuses a re-created owner account of the same name', () => {
    const decision = matchTrustPolicy(claims('recreated-owner'), [policy({ repositoryOwnerId: '119938721' })], AGENT);
    expect(decision).toMatchObject({ isGranted: false, refusal: 'Trust policy violation' });
    expect(decision.isGranted || decision.reason).toContain('repository_owner_id "150000017" is not "119938721"');
  });

  it('says "Trust policy violation", not "Branch not permitted", for a re-created repository on the wrong branch', () => {
    const decision = matchTrustPolicy(claims('recreated-repository', { ref: 'refs/heads/dev' }), [{ ...pinned, branch: 'main' }], AGENT);
    expect(refusal(decision)).toBe('Trust policy violation');
  });

  it('asks to bind only the ids the policy lacks', () => {
    const decision = matchTrustPolicy(claims(), [policy({ repositoryId: '892312441' })], AGENT);
    expect(decision).toMatchObject({ isGranted: true, bindings: [{ policyId: 'policy-1', repositoryOwnerId: '119938721' }] });
  });

  it.each(['repository_id', 'repository_owner_id'])('refuses a token without %s, which could not be bound', (claim) => {
    const decision = matchTrustPolicy(claims('push-main', { [claim]: undefined }), [policy()], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: `policy policy-1: token has no ${claim} to bind`,
    });
  });
});

describe('matchTrustPolicy: tag', () => {
  it('grants the tag push a tag policy names (fixture tag)', () => {
    expect(matchTrustPolicy(claims('tag'), [policy({ tag: 'v1.2.0' })], AGENT).isGranted).toBe(true);
  });

  it.each([
    ['v*', 'refs/tags/v1.2.0', true],
    ['v*', 'refs/tags/release/v1', false],
    ['v*', 'refs/tags/V1', false],
    ['releases/**', 'refs/tags/releases/2026/11', true],
    ['v1.2.0', 'refs/tags/v1.2.0', true],
    ['v1.2.0', 'refs/tags/v1.2.0-rc1', false],
    ['v*', 'refs/heads/v1', false],
    ['v*', 'refs/pull/1/merge', false],
    ['**', 'refs/heads/main', false],
  ])('tag pattern %s against %s: %s', (tag, ref, isGranted) => {
    expect(matchTrustPolicy(claims('tag', { ref }), [policy({ tag })], AGENT).isGranted).toBe(isGranted);
  });

  it('refuses a branch push against a tag policy as "Branch not permitted", naming the expected ref for the audit log only', () => {
    const decision = matchTrustPolicy(claims('push-main'), [policy({ tag: 'v*' })], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Branch not permitted',
      reason: 'policy policy-1: ref "refs/heads/main" is not "refs/tags/v*"',
    });
  });
});
