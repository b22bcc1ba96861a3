/**
 * The bundled register-agent action (actions/register-agent/dist/index.js) run as the
 * runner runs it against the real IdP, then the bundled issue-token action for the agent it
 * registered: the registration policy is all the set-up a repository needs, since
 * registering creates the new agent's own trust policy.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { bearer, send } from '../support/api.js';
import { loadClaimFixture, type GitHubClaimSet } from '../support/github-claims.js';
import { runAction, runPostStep, type ActionRun } from '../support/run-action.js';
import {
  createTrustPolicy,
  decodeJwtClaims,
  introspect,
  maskedIdTokens,
  runnerContext,
  startRealIdp,
  type RealIdp,
} from './real-idp.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PUSH_MAIN = loadClaimFixture('push-main');
const FEATURE_BRANCH = loadClaimFixture('push-feature-branch');
// A repository of the same owner that has no registration policy.
const OTHER_REPOSITORY: GitHubClaimSet = {
  ...PUSH_MAIN,
  sub: 'repo:octo-org/other-repo:ref:refs/heads/main',
  repository: 'octo-org/other-repo',
  repository_id: '892312999',
  workflow_ref: 'octo-org/other-repo/.github/workflows/deploy.yml@refs/heads/main',
  job_workflow_ref: 'octo-org/other-repo/.github/workflows/deploy.yml@refs/heads/main',
};

let idp: RealIdp;

beforeAll(async () => {
  idp = await startRealIdp();
  await createTrustPolicy(idp, { repository: 'octo-org/octo-repo', branch: 'main', scopes: ['agents:read', 'tokens:read'] });
});
afterAll(async () => {
  await idp.close();
});
beforeEach(() => {
  idp.github.setRunnerClaims(PUSH_MAIN);
});

function registerAgent(inputs: Record<string, string>, claims: GitHubClaimSet = PUSH_MAIN, env: Record<string, string | undefined> = {}) {
  idp.github.setRunnerClaims(claims);
  return runAction({
    action: 'register-agent',
    inputs: { 'api-url': idp.apiUrl, ...inputs },
    env: idp.runnerEnv({ ...runnerContext(claims), ...env }),
  });
}

function issueToken(agentId: string, claims: GitHubClaimSet = PUSH_MAIN) {
  idp.github.setRunnerClaims(claims);
  const options = {
    action: 'issue-token',
    inputs: { 'api-url': idp.apiUrl, 'agent-id': agentId },
    env: idp.runnerEnv(runnerContext(claims)),
  };
  return { main: () => runAction(options), post: (main: ActionRun) => runPostStep(main, options) };
}

describe('register-agent against the real IdP', () => {
  it('creates the agent, and a re-run of the workflow finds the same one with created=false', async () => {
    const runnerRequestsBefore = idp.github.runnerRequests;
    const first = await registerAgent({ name: 'deploy-bot', description: 'Deploys from main', scopes: 'agents:read' });
    expect(first.commands.errors).toEqual([]);
    expect(first.exitCode).toBe(0);
    expect(first.outputs).toEqual({ 'agent-id': expect.stringMatching(UUID), created: 'true' });
    const agentId = first.outputs['agent-id'];
    expect(first.stdout).toContain(`Registered agent "deploy-bot" as ${agentId}.`);
    expect(decodeJwtClaims(maskedIdTokens(first.commands.masks, idp.github)[0]).aud).toBe(idp.apiUrl);

    const agent = await send(idp.server, `/api/v1/agents/${agentId}`, bearer(idp.admin));
    expect(agent.body).toMatchObject({ agentId, name: 'deploy-bot', description: 'Deploys from main', scopes: ['agents:read'], status: 'active' });

    const again = await registerAgent({ name: 'deploy-bot', description: 'Deploys from main', scopes: 'agents:read' });
    expect(again.exitCode).toBe(0);
    expect(again.outputs).toEqual({ 'agent-id': agentId, created: 'false' });
    expect(again.stdout).toContain(`Agent "deploy-bot" was already registered for this repository as ${agentId}.`);
    expect(idp.github.runnerRequests - runnerRequestsBefore).toBe(2);
  });

  it('registers one agent when two jobs register the same name at once', async () => {
    const runs = await Promise.all([registerAgent({ name: 'matrix-bot' }), registerAgent({ name: 'matrix-bot' })]);
    expect(runs.map((run) => run.exitCode)).toEqual([0, 0]);
    expect(runs[0].outputs['agent-id']).toBe(runs[1].outputs['agent-id']);
    expect(runs.map((run) => run.outputs.created).sort()).toEqual(['false', 'true']);
  });

  it("creates the new agent's trust policy itself: issue-token then works for it, and its post step revokes the token", async () => {
    const registered = await registerAgent({ name: 'token-bot', scopes: 'agents:read' });
    const agentId = registered.outputs['agent-id'];
    const policies = await send(idp.server, `/api/v1/oidc/trust-policies?agentId=${agentId}`, bearer(idp.admin));
    expect(policies.body.data).toEqual([
      expect.objectContaining({ provider: 'github', repository: 'octo-org/octo-repo', agentId, branch: 'main', repositoryId: PUSH_MAIN.repository_id }),
    ]);

    const action = issueToken(agentId);
    const main = await action.main();
    expect(main.commands.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const accessToken = main.outputs['access-token'];
    expect(await introspect(idp, accessToken)).toMatchObject({ active: true, sub: agentId, scope: 'agents:read', repository: 'octo-org/octo-repo' });
    const post = await action.post(main);
    expect(post.exitCode).toBe(0);
    expect(await introspect(idp, accessToken)).toEqual({ active: false });
  });

  it("gives the new agent's policy the registration policy's branch: issue-token from a feature branch is refused", async () => {
    const registered = await registerAgent({ name: 'main-only-bot' });
    const main = await issueToken(registered.outputs['agent-id'], FEATURE_BRANCH).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'HTTP 403 — Branch not permitted: A trust policy exists but specifies a branch constraint that does not match ' +
        "the current workflow's branch (refs/heads/feature/login). Add a policy for the current branch, or remove the " +
        'branch constraint to allow all branches.',
    ]);
  });
});

describe('register-agent failures, as the real IdP refuses them', () => {
  it('fails with the "Trust policy violation" instructions when the repository has no registration policy', async () => {
    const run = await registerAgent({ name: 'stray-bot' }, OTHER_REPOSITORY);
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      'HTTP 403 — Trust policy violation: No registration trust policy (a policy without `agentId`) exists for this ' +
        'repository (octo-org/other-repo). Register one using the Prerequisites steps in the register-agent README: ' +
        `POST ${idp.apiUrl}/api/v1/oidc/trust-policies with {"provider": "github", "repository": "octo-org/other-repo"}.`,
    ]);
    expect(run.outputs).toEqual({});
  });

  it('fails with the "Branch not permitted" text when the registration policy allows main and the run is on a feature branch', async () => {
    const run = await registerAgent({ name: 'feature-bot' }, FEATURE_BRANCH);
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      'HTTP 403 — Branch not permitted: A trust policy exists but specifies a branch constraint that does not match ' +
        "the current workflow's branch (refs/heads/feature/login). Add a policy for the current branch, or remove the " +
        'branch constraint to allow all branches.',
    ]);
  });

  it("fails with invalid_scope, naming the `scopes` input, for a scope the registration policy does not allow", async () => {
    const run = await registerAgent({ name: 'greedy-bot', scopes: 'agents:read audit:read' });
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      "HTTP 400 — invalid_scope: Requested scope 'audit:read' is not available. The `scopes` input may name only " +
        'scopes the agent may hold.',
    ]);
  });

  it("fails with invalid_grant and the audience hint when the `audience` input is not the IdP's OIDC_AUDIENCE", async () => {
    const run = await registerAgent({ name: 'audience-bot', audience: 'https://wrong.example' });
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      'HTTP 400 — invalid_grant: the IdP refused the GitHub ID token (The GitHub ID token is invalid.). The ' +
        "`audience` input (https://wrong.example) must equal the server's OIDC_AUDIENCE (by default its PUBLIC_URL), " +
        "and the server's GITHUB_OIDC_ISSUER must be this runner's token issuer.",
    ]);
  });

  it('fails with the `id-token: write` hint, and registers nothing, when the runner offers no ID token', async () => {
    const runnerRequestsBefore = idp.github.runnerRequests;
    const run = await registerAgent({ name: 'no-permission-bot' }, PUSH_MAIN, {
      ACTIONS_ID_TOKEN_REQUEST_URL: undefined,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined,
    });
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
        '(pull requests from forks receive no ID token). Reason: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable',
    ]);
    expect(idp.github.runnerRequests).toBe(runnerRequestsBefore);
    const agents = await send(idp.server, '/api/v1/agents?limit=100', bearer(idp.admin));
    expect(agents.body.data.map((agent: { name: string }) => agent.name)).not.toContain('no-permission-bot');
  });
});
