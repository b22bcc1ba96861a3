/**
 * POST /oidc/token decides with the trust policies exactly as the contract says, and
 * refuses without revealing what a policy expects. Every test has its own agent, so its
 * policies and their bindings affect no other test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, json, send, type Reply, platformOrgIdOf } from '../support/api.js';
import {
  REFUSAL,
  agentWithPolicy,
  auditEvents,
  createPolicy,
  exchange,
  getPolicy,
  mintIdToken,
  startHarness,
  type Harness,
} from './exchange-harness.js';
import type { ClaimFixtureName } from '../support/github-claims.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

async function exchangeAs(agentId: string, fixture: ClaimFixtureName = 'push-main', overrides: Record<string, unknown> = {}): Promise<Reply> {
  return exchange(h.server, await mintIdToken(h.github, fixture, overrides), agentId);
}

function expectOutcome(reply: Reply, outcome: 'granted' | keyof typeof REFUSAL) {
  if (outcome === 'granted') expect({ status: reply.status, error: reply.body.error }).toEqual({ status: 200, error: undefined });
  else expect({ status: reply.status, body: reply.body }).toEqual({ status: 403, body: REFUSAL[outcome as 'violation' | 'branch'] });
}

describe('repository', () => {
  it('matches the repository ignoring ASCII case', async () => {
    const { agentId } = await agentWithPolicy(h, { repository: 'Octo-Org/OCTO-repo' });
    expectOutcome(await exchangeAs(agentId), 'granted');
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository: 'OCTO-ORG/Octo-Repo' }), 'granted');
  });

  it.each([
    ['a Kelvin sign for k', 'octo-org/\u212Ait-sdk'],
    ['a long s for s', 'octo-org/kit-\u017Fdk'],
    ['a fullwidth letter', 'octo-org/\uFF4Bit-sdk'],
    ['a dotless i', 'octo-org/k\u0131t-sdk'],
  ])('refuses a Unicode look-alike of the repository: %s', async (_, repository) => {
    const { agentId } = await agentWithPolicy(h, { repository: 'octo-org/kit-sdk' });
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository }), 'violation');
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository: 'octo-org/KIT-SDK' }), 'granted');
  });

  it.each(['octo-org/octo-repo-evil', 'octo-org/octo-rep', 'octo-org-evil/octo-repo', 'evil/octo-org/octo-repo', 'octo-org/octo-repo ', 'octo-org/octo-repo/'])(
    'refuses the repository look-alike %j',
    async (repository) => {
      const { agentId } = await agentWithPolicy(h);
      expectOutcome(await exchangeAs(agentId, 'push-main', { repository }), 'violation');
    },
  );

  it('binds repositoryId and repositoryOwnerId on the first success and refuses a re-created repository or owner', async () => {
    const { agentId, policy } = await agentWithPolicy(h, { branch: 'main' });
    expect((await getPolicy(h, policy.id)).body).toMatchObject({ repositoryId: null, repositoryOwnerId: null });
    expectOutcome(await exchangeAs(agentId), 'granted');
    expect((await getPolicy(h, policy.id)).body).toMatchObject({ repositoryId: '892312441', repositoryOwnerId: '119938721' });
    const [bound] = await auditEvents(h, 'trust_policy.bound', agentId);
    expect(bound.data).toEqual({ policyId: policy.id, repositoryId: '892312441', repositoryOwnerId: '119938721' });

    expectOutcome(await exchangeAs(agentId, 'recreated-repository'), 'violation');
    expectOutcome(await exchangeAs(agentId, 'recreated-owner'), 'violation');
    // On another branch too: a re-created repository never hears "Branch not permitted".
    expectOutcome(await exchangeAs(agentId, 'recreated-repository', { ref: 'refs/heads/dev' }), 'violation');
    expectOutcome(await exchangeAs(agentId), 'granted');
    const [, , recreated] = await auditEvents(h, 'oidc.exchange.refused', agentId);
    expect(recreated.data.reason).toBe(`policy ${policy.id}: repository_id "905551230" is not "892312441"`);
  });

  it('refuses a repository whose owner alone was re-created once the owner id is pinned', async () => {
    const { agentId } = await agentWithPolicy(h, { repositoryId: '892312441' });
    expectOutcome(await exchangeAs(agentId), 'granted');
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository_owner_id: '150000017' }), 'violation');
  });

  it('enforces ids given at creation from the first exchange', async () => {
    const { agentId } = await agentWithPolicy(h, { repositoryId: '892312441', repositoryOwnerId: '119938721' });
    expectOutcome(await exchangeAs(agentId, 'recreated-repository'), 'violation');
    expectOutcome(await exchangeAs(agentId), 'granted');
  });

  it('lets exactly one of two repositories racing for the first binding win', async () => {
    const { agentId, policy } = await agentWithPolicy(h);
    const tokens = await Promise.all(['push-main', 'recreated-repository'].map((fixture) => mintIdToken(h.github, fixture as ClaimFixtureName)));
    const replies = await Promise.all(tokens.map((token) => exchange(h.server, token, agentId)));
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 403]);
    const winner = replies[0].status === 200 ? '892312441' : '905551230';
    expect((await getPolicy(h, policy.id)).body.repositoryId).toBe(winner);
  });

  it('grants every one of concurrent first uses by the same repository, and audits the binding once', async () => {
    const { agentId, policy } = await agentWithPolicy(h);
    const tokens = await Promise.all(Array.from({ length: 6 }, () => mintIdToken(h.github, 'push-main')));
    const replies = await Promise.all(tokens.map((token) => exchange(h.server, token, agentId)));
    expect(replies.map((reply) => reply.status)).toEqual(Array.from({ length: 6 }, () => 200));
    expect((await getPolicy(h, policy.id)).body).toMatchObject({ repositoryId: '892312441', repositoryOwnerId: '119938721' });
    expect(await auditEvents(h, 'trust_policy.bound', agentId)).toHaveLength(1);
  });

  it('refuses a token without repository_id or repository_owner_id', async () => {
    const { agentId } = await agentWithPolicy(h);
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository_id: undefined }), 'violation');
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository_owner_id: undefined }), 'violation');
  });
});

describe('branch', () => {
  let agentId: string;
  beforeAll(async () => {
    ({ agentId } = await agentWithPolicy(h, { branch: 'main' }));
  });

  it('grants refs/heads/<branch> exactly', async () => {
    expectOutcome(await exchangeAs(agentId), 'granted');
  });

  it.each([
    ['a tag of the same name', 'tag', { ref: 'refs/tags/main' }],
    ['a pull-request merge ref', 'pull-request', {}],
    ['a longer branch name', 'push-main', { ref: 'refs/heads/main-evil' }],
    ['a sub-branch', 'push-main', { ref: 'refs/heads/main/evil' }],
    ['another case', 'push-main', { ref: 'refs/heads/Main' }],
    ['the bare name', 'push-main', { ref: 'main' }],
    ['a trailing space', 'push-main', { ref: 'refs/heads/main ' }],
    ['a remote-tracking ref', 'push-main', { ref: 'refs/remotes/origin/main' }],
    ['another branch', 'push-feature-branch', {}],
    ['no ref at all', 'push-main', { ref: undefined }],
  ] as const)('answers "Branch not permitted" for %s', async (_, fixture, overrides) => {
    expectOutcome(await exchangeAs(agentId, fixture, overrides), 'branch');
  });

  it('answers "Trust policy violation" when something besides the branch fails too', async () => {
    expectOutcome(await exchangeAs(agentId, 'pull-request-target', { ref: 'refs/heads/dev' }), 'violation');
    expectOutcome(await exchangeAs(agentId, 'push-main', { ref: 'refs/heads/dev', repository: 'octo-org/other' }), 'violation');
  });

  it('grants a branch that any one of several policies allows', async () => {
    const { agentId: twoBranches } = await agentWithPolicy(h, { branch: 'main' });
    await createPolicy(h, { agentId: twoBranches, branch: 'feature/login' });
    expectOutcome(await exchangeAs(twoBranches, 'push-feature-branch'), 'granted');
    expectOutcome(await exchangeAs(twoBranches), 'granted');
    expectOutcome(await exchangeAs(twoBranches, 'tag'), 'branch');
  });

  it('grants any branch, but no tag or pull-request ref, when the policy names no branch', async () => {
    const { agentId: anyBranch } = await agentWithPolicy(h);
    for (const fixture of ['push-main', 'push-feature-branch'] as const) expectOutcome(await exchangeAs(anyBranch, fixture), 'granted');
    for (const fixture of ['tag', 'pull-request'] as const) expectOutcome(await exchangeAs(anyBranch, fixture), 'branch');
  });

  it('grants the branches a glob names: * within one segment, ** across', async () => {
    const { agentId: oneLevel } = await agentWithPolicy(h, { branch: 'release/*' });
    expectOutcome(await exchangeAs(oneLevel, 'push-main', { ref: 'refs/heads/release/v1' }), 'granted');
    expectOutcome(await exchangeAs(oneLevel, 'push-main', { ref: 'refs/heads/release/v1/hotfix' }), 'branch');
    expectOutcome(await exchangeAs(oneLevel, 'push-main', { ref: 'refs/tags/release/v1' }), 'branch');
    const { agentId: deep } = await agentWithPolicy(h, { branch: 'release/**' });
    expectOutcome(await exchangeAs(deep, 'push-main', { ref: 'refs/heads/release/v1/hotfix' }), 'granted');
  });
});

describe('tag', () => {
  it('grants the tags a tag policy names, and no branch', async () => {
    const { agentId } = await agentWithPolicy(h, { tag: 'v*' });
    expectOutcome(await exchangeAs(agentId, 'tag'), 'granted');
    expectOutcome(await exchangeAs(agentId, 'tag', { ref: 'refs/tags/release-1' }), 'branch');
    expectOutcome(await exchangeAs(agentId, 'push-main'), 'branch');
    expectOutcome(await exchangeAs(agentId, 'push-main', { ref: 'refs/heads/v1' }), 'branch');
  });

  it('refuses a policy naming both a branch and a tag, and a tag given as a ref', async () => {
    const { agentId } = await agentWithPolicy(h);
    const both = await send(h.server, '/api/v1/oidc/trust-policies', bearer(h.admin, json('POST', { provider: 'github', repository: 'octo-org/octo-repo', agentId, branch: 'main', tag: 'v*' })));
    expect(both).toMatchObject({ status: 400, body: { code: 'VALIDATION_ERROR', message: 'The trust policy is invalid: tag: a policy names a branch or a tag, not both.' } });
    const ref = await send(h.server, '/api/v1/oidc/trust-policies', bearer(h.admin, json('POST', { provider: 'github', repository: 'octo-org/octo-repo', agentId, tag: 'refs/tags/v1' })));
    expect(ref).toMatchObject({ status: 400, body: { code: 'VALIDATION_ERROR' } });
  });
});

describe('environment, workflowRef, jobWorkflowRef', () => {
  it('requires the exact environment, and refuses a token without one', async () => {
    const { agentId } = await agentWithPolicy(h, { environment: 'production' });
    expectOutcome(await exchangeAs(agentId, 'environment-production'), 'granted');
    expectOutcome(await exchangeAs(agentId), 'violation');
    expectOutcome(await exchangeAs(agentId, 'environment-production', { environment: 'Production' }), 'violation');
    expectOutcome(await exchangeAs(agentId, 'environment-production', { environment: 'production-eu' }), 'violation');
  });

  it('requires the exact workflowRef, and refuses a token without one', async () => {
    const { agentId } = await agentWithPolicy(h, { workflowRef: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main' });
    expectOutcome(await exchangeAs(agentId), 'granted');
    expectOutcome(await exchangeAs(agentId, 'reusable-workflow'), 'violation');
    expectOutcome(await exchangeAs(agentId, 'push-main', { workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main-evil' }), 'violation');
    expectOutcome(await exchangeAs(agentId, 'push-main', { workflow_ref: 'Octo-Org/octo-repo/.github/workflows/deploy.yml@refs/heads/main' }), 'violation');
    expectOutcome(await exchangeAs(agentId, 'push-main', { workflow_ref: undefined }), 'violation');
  });

  it('requires the exact jobWorkflowRef, and refuses a token without one', async () => {
    const { agentId } = await agentWithPolicy(h, { jobWorkflowRef: 'octo-org/shared-workflows/.github/workflows/deploy.yml@refs/heads/main' });
    expectOutcome(await exchangeAs(agentId, 'reusable-workflow'), 'granted');
    expectOutcome(await exchangeAs(agentId), 'violation');
    expectOutcome(await exchangeAs(agentId, 'reusable-workflow', { job_workflow_ref: undefined }), 'violation');
  });
});

describe('events', () => {
  it.each([
    ['pull-request-target', 'pull_request_target'],
    ['workflow-run', 'workflow_run'],
    ['issue-comment', 'issue_comment'],
  ] as const)('refuses %s unless the policy lists it in allowedEvents', async (fixture, event) => {
    const { agentId } = await agentWithPolicy(h, { branch: 'main' });
    expectOutcome(await exchangeAs(agentId, fixture), 'violation');
    const { agentId: unlocked } = await agentWithPolicy(h, { branch: 'main', allowedEvents: [event] });
    expectOutcome(await exchangeAs(unlocked, fixture), 'granted');
    const other = fixture === 'workflow-run' ? 'pull-request-target' : 'workflow-run';
    expectOutcome(await exchangeAs(unlocked, other), 'violation');
  });

  it('allows ordinary events with no allowedEvents, and refuses a token without event_name', async () => {
    const { agentId } = await agentWithPolicy(h);
    expectOutcome(await exchangeAs(agentId, 'pull-request', { ref: 'refs/heads/feature/login' }), 'granted');
    expectOutcome(await exchangeAs(agentId, 'push-main', { event_name: 'workflow_dispatch' }), 'granted');
    expectOutcome(await exchangeAs(agentId, 'push-main', { event_name: undefined }), 'violation');
  });
});

describe('agents', () => {
  it('answers an unknown agent byte for byte like a policy violation', async () => {
    const { agentId } = await agentWithPolicy(h, { repository: 'octo-org/elsewhere' });
    const violation = await exchangeAs(agentId);
    const unknown = await exchangeAs(randomUUID());
    expect(violation.status).toBe(403);
    expect({ status: unknown.status, text: unknown.text }).toEqual({ status: violation.status, text: violation.text });
    for (const header of ['content-type', 'content-length', 'cache-control', 'pragma', 'www-authenticate']) {
      expect(unknown.headers.get(header)).toBe(violation.headers.get(header));
    }
  });

  it('answers 403 unauthorized_client to a matching workflow of a suspended agent, and grants again on reactivation', async () => {
    const { agentId } = await agentWithPolicy(h, { branch: 'main' });
    expect((await send(h.server, `/api/v1/agents/${agentId}/suspend`, bearer(h.admin, { method: 'POST' }))).status).toBe(200);
    const reply = await exchangeAs(agentId);
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 403,
      body: { error: 'unauthorized_client', error_description: 'Agent is suspended and cannot obtain tokens.' },
    });
    // A workflow the policies do not admit learns nothing about the agent's state.
    expectOutcome(await exchangeAs(agentId, 'push-feature-branch'), 'branch');
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository: 'octo-org/other' }), 'violation');
    expect((await send(h.server, `/api/v1/agents/${agentId}/reactivate`, bearer(h.admin, { method: 'POST' }))).status).toBe(200);
    expectOutcome(await exchangeAs(agentId), 'granted');
  });

  it('answers 403 unauthorized_client to a matching workflow of a decommissioned agent', async () => {
    const { agentId } = await agentWithPolicy(h);
    expect((await send(h.server, `/api/v1/agents/${agentId}`, bearer(h.admin, { method: 'DELETE' }))).status).toBe(200);
    const reply = await exchangeAs(agentId);
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 403,
      body: { error: 'unauthorized_client', error_description: 'Agent is decommissioned and cannot obtain tokens.' },
    });
  });

  it("does not let another agent's policy for the same repository admit the token", async () => {
    await agentWithPolicy(h);
    const lonely = (await agentWithPolicy(h, { repository: 'octo-org/elsewhere' })).agentId;
    expectOutcome(await exchangeAs(lonely), 'violation');
  });

  it('does not let a registration policy admit an exchange for an agent', async () => {
    await createPolicy(h, { repository: 'octo-org/registry-only', scopes: ['agents:read'] });
    const { agentId } = await agentWithPolicy(h, { repository: 'octo-org/elsewhere' });
    expectOutcome(await exchangeAs(agentId, 'push-main', { repository: 'octo-org/registry-only' }), 'violation');
  });
});

describe('refusals reveal nothing, the audit log everything', () => {
  const SECRET = { branch: 'release-7f3a', environment: 'prod-9c1e', workflowRef: 'octo-org/octo-repo/.github/workflows/ship-5d2b.yml@refs/heads/release-7f3a' };

  it('never puts a policy’s expected values in a refusal, and audits the precise reason for admins', async () => {
    const { agentId, policy } = await agentWithPolicy(h, { ...SECRET, repositoryId: '424242', repositoryOwnerId: '535353' });
    const replies = [
      await exchangeAs(agentId),
      await exchangeAs(agentId, 'push-main', { repository_id: '424242', repository_owner_id: '535353', environment: 'prod-9c1e', workflow_ref: SECRET.workflowRef }),
    ];
    expect(replies.map((reply) => reply.body)).toEqual([REFUSAL.violation, REFUSAL.branch]);
    for (const reply of replies) {
      const everything = `${reply.text}\n${[...reply.headers].join('\n')}`;
      for (const value of [...Object.values(SECRET), '424242', '535353', policy.id, 'refs/heads']) expect(everything).not.toContain(value);
    }
    const [branchOnly, everything] = await auditEvents(h, 'oidc.exchange.refused', agentId);
    expect(branchOnly).toMatchObject({
      agentId,
      actor: 'github:octo-org/octo-repo',
      data: { reason: `policy ${policy.id}: ref "refs/heads/main" is not "refs/heads/release-7f3a"`, repository: 'octo-org/octo-repo', ref: 'refs/heads/main', run_id: '9876543210' },
    });
    expect(everything.data.reason).toBe(
      `policy ${policy.id}: repository_id "892312441" is not "424242", repository_owner_id "119938721" is not "535353", ` +
        `ref "refs/heads/main" is not "refs/heads/release-7f3a", token has no environment, ` +
        `workflow_ref "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main" is not "${SECRET.workflowRef}"`,
    );
  });

  it('audits an unknown agent, a suspended agent and a privileged event with their reasons', async () => {
    const unknown = randomUUID();
    await exchangeAs(unknown);
    expect((await auditEvents(h, 'oidc.exchange.refused', unknown))[0].data.reason).toBe('unknown agent');

    const { agentId, policy } = await agentWithPolicy(h);
    await exchangeAs(agentId, 'workflow-run');
    await send(h.server, `/api/v1/agents/${agentId}/suspend`, bearer(h.admin, { method: 'POST' }));
    await exchangeAs(agentId);
    const [suspended, event] = await auditEvents(h, 'oidc.exchange.refused', agentId);
    expect(suspended.data.reason).toBe('agent is suspended');
    expect(event.data.reason).toBe(`policy ${policy.id}: event_name "workflow_run" is not in allowedEvents`);
  });

  it('audits every grant with the provenance of the run and the policy that admitted it', async () => {
    const { agentId, policy } = await agentWithPolicy(h, { branch: 'main' });
    expectOutcome(await exchangeAs(agentId), 'granted');
    const [granted, ...others] = await auditEvents(h, 'oidc.exchange.granted', agentId);
    expect(others).toEqual([]);
    expect(granted).toEqual({
      id: expect.any(String),
      type: 'oidc.exchange.granted',
      agentId,
      orgId: await platformOrgIdOf(h.server),
      actor: 'github:octo-org/octo-repo',
      createdAt: expect.any(String),
      hash: expect.any(String),
      data: {
        jti: expect.any(String),
        scope: 'agents:read',
        grantType: 'github_oidc',
        policyIds: [policy.id],
        repository: 'octo-org/octo-repo',
        repository_id: '892312441',
        repository_owner_id: '119938721',
        ref: 'refs/heads/main',
        sha: '3f786850e387550fdab836ed7e6dc881de23001b',
        workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
        job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
        event_name: 'push',
        run_id: '9876543210',
        run_attempt: '1',
        actor: 'octocat',
      },
    });
  });

  it('keeps the audit chain valid through grants and refusals', async () => {
    const reply = await send(h.server, '/api/v1/audit/verify', bearer(h.admin));
    expect(reply.body).toMatchObject({ valid: true });
  });
});

describe('request formats', () => {
  it('accepts the exchange form-encoded', async () => {
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github);
    const reply = await send(h.server, '/api/v1/oidc/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, agentId }).toString(),
    });
    expect(reply.status).toBe(200);
  });

  it.each([
    ['no agentId', { token: 'x' }, 'agentId'],
    ['an agentId that is not a UUID', { token: 'x', agentId: 'octo-bot' }, 'agentId'],
    ['no token', { agentId: randomUUID() }, 'token'],
  ])('answers invalid_request for %s', async (_, body, field) => {
    const reply = await send(h.server, '/api/v1/oidc/token', json('POST', body));
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: `The '${field}' parameter is missing or malformed.` },
    });
  });
});
