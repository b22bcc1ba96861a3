/**
 * The bundled issue-token action (actions/issue-token/dist/index.js), main and post step,
 * run as the runner runs it against the real IdP, which trusts a fake GitHub issuer whose
 * runner endpoint hands the action its ID tokens. Every failure message here is the real
 * server's refusal as the action words it.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { bearer, createAgent, send } from '../support/api.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { runAction, runPostStep, type ActionRun } from '../support/run-action.js';
import {
  countLoggedRequests,
  createTrustedAgent,
  decodeJwtClaims,
  expectMaskedBeforeFirstUse,
  introspect,
  maskedIdTokens,
  runnerContext,
  startRealIdp,
  waitForLoggedStatus,
  type RealIdp,
} from './real-idp.js';
import { refusingUrl } from './stub-servers.js';

const EXCHANGE_ROUTE = '/api/v1/oidc/token';
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;
const PUSH_MAIN = loadClaimFixture('push-main');
const FEATURE_BRANCH = loadClaimFixture('push-feature-branch');

function issueToken(idp: RealIdp, inputs: Record<string, string>, env: Record<string, string | undefined> = {}) {
  const options = {
    action: 'issue-token',
    inputs: { 'api-url': idp.apiUrl, ...inputs },
    env: idp.runnerEnv({ ...runnerContext(PUSH_MAIN), ...env }),
  };
  return { main: () => runAction(options), post: (main: ActionRun) => runPostStep(main, options) };
}

describe('issue-token against the real IdP (audience: the default, api-url)', () => {
  let idp: RealIdp;
  beforeAll(async () => {
    idp = await startRealIdp();
  });
  afterAll(async () => {
    await idp.close();
  });
  beforeEach(() => {
    idp.github.setRunnerClaims(PUSH_MAIN);
  });

  it("outputs a masked access token the IdP introspects as active, carrying the workflow's provenance", async () => {
    const agentId = await createTrustedAgent(idp, { policy: { branch: 'main' } });
    const runnerRequestsBefore = idp.github.runnerRequests;
    const main = await issueToken(idp, { 'agent-id': agentId }).main();
    expect(main.commands.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(Object.keys(main.outputs).sort()).toEqual(['access-token', 'expires-at']);
    const accessToken = main.outputs['access-token'];
    const expiresAt = main.outputs['expires-at'];
    expectMaskedBeforeFirstUse(main, accessToken);
    expect(expiresAt).toMatch(ISO_8601);

    const introspection = await introspect(idp, accessToken);
    expect(introspection).toMatchObject({
      active: true,
      sub: agentId,
      scope: 'agents:read tokens:read',
      repository: PUSH_MAIN.repository,
      repository_id: PUSH_MAIN.repository_id,
      ref: PUSH_MAIN.ref,
      sha: PUSH_MAIN.sha,
      workflow_ref: PUSH_MAIN.workflow_ref,
      run_id: PUSH_MAIN.run_id,
      actor: PUSH_MAIN.actor,
      event_name: 'push',
    });
    expect(introspection.exp).toBe(Math.floor(Date.parse(expiresAt) / 1000));
    expect(main.stdout).toContain(`Issued an access token for agent ${agentId} (scope "agents:read tokens:read"), expiring at ${expiresAt}; it is revoked when the job ends.`);

    // One ID token, asked for with the api-url as audience, masked before anything printed it.
    expect(idp.github.runnerRequests - runnerRequestsBefore).toBe(1);
    const idTokens = maskedIdTokens(main.commands.masks, idp.github);
    expect(idTokens).toHaveLength(1);
    expect(decodeJwtClaims(idTokens[0]).aud).toBe(idp.apiUrl);
    expectMaskedBeforeFirstUse(main, idTokens[0]);
  });

  it('asks for only the scope given', async () => {
    const agentId = await createTrustedAgent(idp);
    const main = await issueToken(idp, { 'agent-id': agentId, scope: 'agents:read' }).main();
    expect(main.exitCode).toBe(0);
    expect(await introspect(idp, main.outputs['access-token'])).toMatchObject({ active: true, scope: 'agents:read' });
  });

  it('revokes the token in the post step: the IdP then introspects it as inactive', async () => {
    const agentId = await createTrustedAgent(idp);
    const action = issueToken(idp, { 'agent-id': agentId });
    const main = await action.main();
    const accessToken = main.outputs['access-token'];
    expect(await introspect(idp, accessToken)).toMatchObject({ active: true });

    const post = await action.post(main);
    expect(post.exitCode).toBe(0);
    expect(post.commands.errors).toEqual([]);
    expect(post.commands.warnings).toEqual([]);
    expect(post.stdout).toContain('Revoked the access token issued for this job.');
    expectMaskedBeforeFirstUse(post, accessToken);
    expect(await introspect(idp, accessToken)).toEqual({ active: false });
  });

  it('leaves the token active after the post step with revoke: false', async () => {
    const agentId = await createTrustedAgent(idp);
    const action = issueToken(idp, { 'agent-id': agentId, revoke: 'false' });
    const main = await action.main();
    expect(main.exitCode).toBe(0);
    expect(main.stdout).not.toContain('it is revoked when the job ends');
    const post = await action.post(main);
    expect(post.exitCode).toBe(0);
    expect(post.stdout).toContain('No access token to revoke.');
    expect(await introspect(idp, main.outputs['access-token'])).toMatchObject({ active: true, sub: agentId });
  });

  it('fails with the seed\'s "Trust policy violation" instructions when no policy links the repository to the agent', async () => {
    const { agentId } = await createAgent(idp.server, idp.admin, { scopes: ['agents:read'] });
    const exchangesBefore = countLoggedRequests(idp.server, EXCHANGE_ROUTE);
    const main = await issueToken(idp, { 'agent-id': agentId }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([trustPolicyViolation(idp, agentId)]);
    expect(main.outputs).toEqual({});
    expect(countLoggedRequests(idp.server, EXCHANGE_ROUTE) - exchangesBefore).toBe(1);
  });

  it('answers an unknown agent exactly like a missing policy', async () => {
    const unknownAgentId = randomUUID();
    const main = await issueToken(idp, { 'agent-id': unknownAgentId }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([trustPolicyViolation(idp, unknownAgentId)]);
  });

  it('fails with the seed\'s "Branch not permitted" text when the policy allows main and the run is on a feature branch', async () => {
    const agentId = await createTrustedAgent(idp, { policy: { branch: 'main' } });
    idp.github.setRunnerClaims(FEATURE_BRANCH);
    const exchangesBefore = countLoggedRequests(idp.server, EXCHANGE_ROUTE);
    const main = await issueToken(idp, { 'agent-id': agentId }, runnerContext(FEATURE_BRANCH)).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'HTTP 403 — Branch not permitted: A trust policy exists but specifies a branch constraint that does not match ' +
        "the current workflow's branch (refs/heads/feature/login). Add a policy for the current branch, or remove the " +
        'branch constraint to allow all branches.',
    ]);
    expect(countLoggedRequests(idp.server, EXCHANGE_ROUTE) - exchangesBefore).toBe(1);
  });

  it('fails with unauthorized_client for a suspended agent', async () => {
    const agentId = await createTrustedAgent(idp);
    const suspended = await send(idp.server, `/api/v1/agents/${agentId}/suspend`, bearer(idp.admin, { method: 'POST' }));
    expect(suspended.status).toBe(200);
    const main = await issueToken(idp, { 'agent-id': agentId }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      `HTTP 403 — unauthorized_client: agent ${agentId} is suspended or decommissioned and cannot receive tokens ` +
        `(Agent is suspended and cannot obtain tokens.). Reactivate it (POST /api/v1/agents/${agentId}/reactivate) ` +
        'or use an active agent.',
    ]);
  });

  it('fails with invalid_scope, naming the `scope` input, when asking for a scope the agent does not hold', async () => {
    const agentId = await createTrustedAgent(idp, { scopes: ['agents:read'] });
    const main = await issueToken(idp, { 'agent-id': agentId, scope: 'agents:read audit:read' }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      "HTTP 400 — invalid_scope: Requested scope 'audit:read' is not available. The `scope` input may name only " +
        'scopes the agent may hold.',
    ]);
  });

  it('fails with invalid_grant and the audience hint when the `audience` input is not the IdP\'s OIDC_AUDIENCE', async () => {
    const agentId = await createTrustedAgent(idp);
    const runnerRequestsBefore = idp.github.runnerRequests;
    const main = await issueToken(idp, { 'agent-id': agentId, audience: 'https://wrong.example' }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'HTTP 400 — invalid_grant: the IdP refused the GitHub ID token (The GitHub ID token is invalid.). The ' +
        "`audience` input (https://wrong.example) must equal the server's OIDC_AUDIENCE (by default its PUBLIC_URL), " +
        "and the server's GITHUB_OIDC_ISSUER must be this runner's token issuer.",
    ]);
    expect(decodeJwtClaims(maskedIdTokens(main.commands.masks, idp.github)[0]).aud).toBe('https://wrong.example');
    expect(idp.github.runnerRequests - runnerRequestsBefore).toBe(1);
  });

  it('fails with the `id-token: write` hint, before calling the IdP, when the runner offers no ID token', async () => {
    const agentId = await createTrustedAgent(idp);
    const exchangesBefore = countLoggedRequests(idp.server, EXCHANGE_ROUTE);
    const runnerRequestsBefore = idp.github.runnerRequests;
    const main = await issueToken(idp, { 'agent-id': agentId }, { ACTIONS_ID_TOKEN_REQUEST_URL: undefined, ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
        '(pull requests from forks receive no ID token). Reason: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable',
    ]);
    expect(idp.github.runnerRequests).toBe(runnerRequestsBefore);
    expect(countLoggedRequests(idp.server, EXCHANGE_ROUTE)).toBe(exchangesBefore);
  });

  it('fails naming the api-url when nothing listens there, after retries bounded in time, each with a fresh ID token', async () => {
    const closedUrl = await refusingUrl();
    const runnerRequestsBefore = idp.github.runnerRequests;
    const startedMs = Date.now();
    const main = await issueToken(idp, { 'api-url': closedUrl, 'agent-id': randomUUID() }, { SENTRYAGENT_RETRY_MAX_MS: '1500' }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toHaveLength(1);
    expect(main.commands.errors[0]).toMatch(
      new RegExp(
        `^Could not reach SentryAgent IdP at ${closedUrl}: connection refused \\(ECONNREFUSED\\), after (\\d+) attempts ` +
          'over \\d+\\.\\d s\\. Check that `api-url` is right and that the IdP is up and reachable from this runner\\.$',
      ),
    );
    const attempts = Number(/after (\d+) attempts/.exec(main.commands.errors[0])?.[1]);
    expect(attempts).toBeGreaterThan(1);
    expect(idp.github.runnerRequests - runnerRequestsBefore).toBe(attempts);
    // The budget, on the action's own clock: it gives up before a wait would overrun 1.5 s, so it
    // reports at most 1.5 s plus what its last attempt (an ID token fetch and a refused
    // connection) may have overrun on a busy machine; the 60 s default budget would be far beyond.
    expect(Number(/over (\d+\.\d) s/.exec(main.commands.errors[0])?.[1])).toBeLessThanOrEqual(2.5);
    // The wall clock also counts starting a Node process for the bundled action.
    expect(Date.now() - startedMs).toBeLessThan(15_000);
  });
});

describe('issue-token against an IdP whose OIDC_AUDIENCE is not its URL', () => {
  const AUDIENCE = 'https://idp.test/github';
  let idp: RealIdp;
  beforeAll(async () => {
    idp = await startRealIdp({ audience: AUDIENCE });
  });
  afterAll(async () => {
    await idp.close();
  });

  it('gets a token when the `audience` input names it', async () => {
    const agentId = await createTrustedAgent(idp);
    const main = await issueToken(idp, { 'agent-id': agentId, audience: AUDIENCE }).main();
    expect(main.commands.errors).toEqual([]);
    expect(decodeJwtClaims(maskedIdTokens(main.commands.masks, idp.github)[0]).aud).toBe(AUDIENCE);
    expect(await introspect(idp, main.outputs['access-token'])).toMatchObject({ active: true, sub: agentId });
  });

  it('is refused with invalid_grant when the input is left to its default (api-url)', async () => {
    const agentId = await createTrustedAgent(idp);
    const main = await issueToken(idp, { 'agent-id': agentId }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'HTTP 400 — invalid_grant: the IdP refused the GitHub ID token (The GitHub ID token is invalid.). The ' +
        `\`audience\` input (${idp.apiUrl}) must equal the server's OIDC_AUDIENCE (by default its PUBLIC_URL), ` +
        "and the server's GITHUB_OIDC_ISSUER must be this runner's token issuer.",
    ]);
  });
});

// Each test starts its own IdP: the 503 comes only from a server that has no GitHub keys cached yet.
describe('issue-token while the GitHub issuer cannot be reached (the IdP answers 503)', () => {
  const RETRY_NOTE =
    'failed (HTTP 503 SERVICE_UNAVAILABLE: The GitHub OIDC issuer cannot be reached. Please retry shortly.); ' +
    'retrying in 5.0 s.';

  it("retries with a fresh ID token per attempt, honouring Retry-After, and succeeds once the issuer is back", async () => {
    const idp = await startRealIdp();
    try {
      const agentId = await createTrustedAgent(idp);
      idp.github.setAvailable(false);
      const fromLine = idp.server.logs.length;
      const running = issueToken(idp, { 'agent-id': agentId }, { SENTRYAGENT_RETRY_MAX_MS: '20000' }).main();
      await waitForLoggedStatus(idp.server, 503, fromLine, 15_000);
      idp.github.setAvailable(true);
      const main = await running;

      expect(main.commands.errors).toEqual([]);
      expect(main.exitCode).toBe(0);
      expect(main.stdout).toContain(`Attempt 1 to reach ${idp.apiUrl}${EXCHANGE_ROUTE} ${RETRY_NOTE}`);
      expect(idp.github.runnerRequests).toBe(2);
      const idTokens = maskedIdTokens(main.commands.masks, idp.github);
      expect(idTokens).toHaveLength(2);
      expect(decodeJwtClaims(idTokens[0]).jti).not.toBe(decodeJwtClaims(idTokens[1]).jti);
      expect(await introspect(idp, main.outputs['access-token'])).toMatchObject({ active: true, sub: agentId });
    } finally {
      await idp.close();
    }
  });

  it('gives up within its time budget when the issuer stays down', async () => {
    const idp = await startRealIdp();
    try {
      const agentId = await createTrustedAgent(idp);
      idp.github.setAvailable(false);
      const main = await issueToken(idp, { 'agent-id': agentId }, { SENTRYAGENT_RETRY_MAX_MS: '9000' }).main();
      expect(main.exitCode).toBe(1);
      expect(main.stdout).toContain(`Attempt 1 to reach ${idp.apiUrl}${EXCHANGE_ROUTE} ${RETRY_NOTE}`);
      expect(main.commands.errors).toHaveLength(1);
      expect(main.commands.errors[0]).toMatch(
        new RegExp(
          `^Could not reach SentryAgent IdP at ${idp.apiUrl}: HTTP 503 SERVICE_UNAVAILABLE: The GitHub OIDC ` +
            'issuer cannot be reached\\. Please retry shortly\\., after 2 attempts over (\\d+\\.\\d) s\\. The IdP answers ' +
            'but is failing; check its health \\(/readyz\\) and logs\\.$',
        ),
      );
      // The second attempt waited out the server's Retry-After (5 s), so it started at >= 5 s and a
      // third could not start before >= 10 s, past the 9 s budget: exactly 2 attempts, as long as
      // the first one is answered within 4 s (the retry is skipped when elapsed + 5 s >= 9 s).
      expect(Number(/over (\d+\.\d) s/.exec(main.commands.errors[0])?.[1])).toBeGreaterThanOrEqual(5);
      expect(idp.github.runnerRequests).toBe(2);
      expect(main.outputs).toEqual({});
    } finally {
      await idp.close();
    }
  });
});

function trustPolicyViolation(idp: RealIdp, agentId: string): string {
  return (
    'HTTP 403 — Trust policy violation: No trust policy exists for this repository + agent combination ' +
    `(repository octo-org/octo-repo, agent ${agentId}). Register a trust policy using the Prerequisites steps in the ` +
    `issue-token README: POST ${idp.apiUrl}/api/v1/oidc/trust-policies with {"provider": "github", ` +
    `"repository": "octo-org/octo-repo", "agentId": "${agentId}"}.`
  );
}
