import {
  evaluateTrustPolicy,
  matchRegistrationPolicy,
  matchTrustPolicy,
} from '../../server/src/github/match-trust-policy.js';
import { AGENT, claimsOf as claims, createTrustPolicy as policy } from './factories.js';

const SHARED_DEPLOY = 'octo-org/shared-workflows/.github/workflows/deploy.yml@refs/heads/main';
const CALLER = 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main';

describe('matchTrustPolicy: environment and workflows', () => {
  it('grants a job in the required environment', () => {
    expect(matchTrustPolicy(claims('environment-production'), [policy({ environment: 'production' })], AGENT).isGranted).toBe(true);
  });

  it('refuses a job without an environment when the policy requires one', () => {
    const decision = matchTrustPolicy(claims('push-main'), [policy({ environment: 'production' })], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: 'policy policy-1: token has no environment',
    });
  });

  it.each(['Production', 'production-eu', 'staging'])('refuses the environment %s when production is required', (environment) => {
    const decision = matchTrustPolicy(claims('environment-production', { environment }), [policy({ environment: 'production' })], AGENT);
    expect(decision).toMatchObject({ isGranted: false, refusal: 'Trust policy violation' });
  });

  it('grants any environment when the policy names none', () => {
    expect(matchTrustPolicy(claims('environment-production'), [policy()], AGENT).isGranted).toBe(true);
  });

  it('grants a reusable workflow pinned by jobWorkflowRef and the caller pinned by workflowRef', () => {
    const pinned = policy({ workflowRef: CALLER, jobWorkflowRef: SHARED_DEPLOY });
    expect(matchTrustPolicy(claims('reusable-workflow'), [pinned], AGENT).isGranted).toBe(true);
  });

  it.each([
    ['another workflow file', { job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main' }],
    ['the shared workflow at another ref', { job_workflow_ref: `${SHARED_DEPLOY}-evil` }],
    ['the shared workflow from a fork', { job_workflow_ref: SHARED_DEPLOY.replace('octo-org/', 'octo-org-fork/') }],
    ['no job_workflow_ref', { job_workflow_ref: undefined }],
  ])('refuses a token whose job workflow is %s', (_, overrides) => {
    const decision = matchTrustPolicy(claims('reusable-workflow', overrides), [policy({ jobWorkflowRef: SHARED_DEPLOY })], AGENT);
    expect(decision).toMatchObject({ isGranted: false, refusal: 'Trust policy violation' });
  });

  it('refuses a caller workflow that differs from workflowRef', () => {
    const decision = matchTrustPolicy(claims('push-main'), [policy({ workflowRef: CALLER })], AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: `policy policy-1: workflow_ref "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main" is not "${CALLER}"`,
    });
  });
});

describe('matchTrustPolicy: events', () => {
  it.each(['pull-request-target', 'workflow-run'] as const)('refuses %s unless the policy lists the event', (name) => {
    const event = claims(name).event_name;
    expect(matchTrustPolicy(claims(name), [policy()], AGENT)).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: `policy policy-1: event_name "${event}" is not in allowedEvents`,
    });
    expect(matchTrustPolicy(claims(name), [policy({ allowedEvents: [event as string] })], AGENT).isGranted).toBe(true);
  });

  it('refuses pull_request_target on the allowed branch as a violation, not a branch problem', () => {
    expect(matchTrustPolicy(claims('pull-request-target'), [policy({ branch: 'main' })], AGENT)).toMatchObject({
      refusal: 'Trust policy violation',
    });
  });

  it('does not let workflow_run in allowedEvents unlock pull_request_target', () => {
    expect(matchTrustPolicy(claims('pull-request-target'), [policy({ allowedEvents: ['workflow_run'] })], AGENT).isGranted).toBe(false);
  });

  it('grants ordinary events without listing them', () => {
    // (The pull-request fixture's refs/pull/… ref is refused by the ref rule, not by its event.)
    expect(matchTrustPolicy(claims('pull-request', { ref: 'refs/heads/feature/login' }), [policy()], AGENT).isGranted).toBe(true);
    expect(matchTrustPolicy(claims('push-main', { event_name: 'workflow_dispatch' }), [policy()], AGENT).isGranted).toBe(true);
  });

  it('refuses a token without event_name, which could be a privileged event', () => {
    expect(matchTrustPolicy(claims('push-main', { event_name: undefined }), [policy()], AGENT)).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: 'policy policy-1: token has no event_name',
    });
  });
});

describe('matchTrustPolicy: several policies', () => {
  it('says "Branch not permitted" when one policy fails only on its branch and another on more', () => {
    const policies = [
      policy({ id: 'env', branch: 'release', environment: 'production' }),
      policy({ id: 'main-only', branch: 'main' }),
    ];
    const decision = matchTrustPolicy(claims('push-feature-branch'), policies, AGENT);
    expect(decision).toEqual({
      isGranted: false,
      refusal: 'Branch not permitted',
      reason:
        'policy env: ref "refs/heads/feature/login" is not "refs/heads/release", token has no environment; ' +
        'policy main-only: ref "refs/heads/feature/login" is not "refs/heads/main"',
    });
  });

  it('says "Trust policy violation" when the only policy fails on its branch and something else', () => {
    const decision = matchTrustPolicy(claims('push-feature-branch'), [policy({ branch: 'main', environment: 'production' })], AGENT);
    expect(decision).toMatchObject({ refusal: 'Trust policy violation' });
  });

  it('grants the union of the matching policies’ scopes, and only theirs', () => {
    const policies = [
      policy({ id: 'a', scopes: ['agents:read'] }),
      policy({ id: 'b', scopes: ['agents:read', 'tokens:read'], repositoryId: '892312441', repositoryOwnerId: '119938721' }),
      policy({ id: 'c', branch: 'release', scopes: ['agents:write'] }),
    ];
    expect(matchTrustPolicy(claims(), policies, AGENT)).toEqual({
      isGranted: true,
      policies: [policies[0], policies[1]],
      scopes: ['agents:read', 'tokens:read'],
      bindings: [{ policyId: 'a', repositoryId: '892312441', repositoryOwnerId: '119938721' }],
    });
  });

  it('grants all of the agent’s scopes (null) when a matching policy names none', () => {
    const policies = [policy({ id: 'a', scopes: ['agents:read'] }), policy({ id: 'b', scopes: null })];
    expect(matchTrustPolicy(claims(), policies, AGENT)).toMatchObject({ isGranted: true, scopes: null });
  });
});

describe('matchRegistrationPolicy', () => {
  const registration = policy({ id: 'reg', agentId: null, branch: 'main' });

  it('grants a workflow matching a registration policy', () => {
    expect(matchRegistrationPolicy(claims(), [registration])).toMatchObject({ isGranted: true, policies: [registration] });
  });

  it('does not count agent policies as registration policies', () => {
    expect(matchRegistrationPolicy(claims(), [policy()])).toEqual({
      isGranted: false,
      refusal: 'Trust policy violation',
      reason: 'no registration policy for repository "octo-org/octo-repo"',
    });
  });

  it('does not let a registration policy act for an agent', () => {
    expect(matchTrustPolicy(claims(), [registration], AGENT).isGranted).toBe(false);
  });

  it('applies the same rules, e.g. "Branch not permitted" for another branch', () => {
    expect(matchRegistrationPolicy(claims('push-feature-branch'), [registration])).toMatchObject({ refusal: 'Branch not permitted' });
  });
});

describe('evaluateTrustPolicy', () => {
  it('lists every failed constraint of one policy', () => {
    const strict = policy({ branch: 'main', environment: 'production', repositoryId: '892312441', allowedEvents: [] });
    expect(evaluateTrustPolicy(strict, claims('recreated-repository', { ref: 'refs/tags/main', event_name: 'workflow_run' }))).toEqual([
      { constraint: 'repositoryId', reason: 'repository_id "905551230" is not "892312441"' },
      { constraint: 'branch', reason: 'ref "refs/tags/main" is not "refs/heads/main"' },
      { constraint: 'environment', reason: 'token has no environment' },
      { constraint: 'event', reason: 'event_name "workflow_run" is not in allowedEvents' },
    ]);
  });

  it('treats an empty constraint as set, so it matches nothing', () => {
    expect(evaluateTrustPolicy(policy({ environment: '' }), claims('environment-production'))).toEqual([
      { constraint: 'environment', reason: 'environment "production" is not ""' },
    ]);
  });
});
