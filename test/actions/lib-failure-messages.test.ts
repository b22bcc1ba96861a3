import { describe, expect, it } from '@jest/globals';
import {
  IdTokenUnavailableError,
  IdpRefusalError,
  IdpUnreachableError,
  UnexpectedResponseError,
} from '../../actions/lib/errors.js';
import { describeFailure, type FailureContext } from '../../actions/lib/failure-messages.js';
import { InputError } from '../../actions/lib/inputs.js';

const AGENT = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const issueToken: FailureContext = {
  action: 'issue-token',
  apiUrl: 'https://idp.example.com',
  audience: 'https://idp.example.com',
  agentId: AGENT,
  repository: 'octo-org/octo-repo',
  ref: 'refs/heads/feature',
};
const registerAgent: FailureContext = { ...issueToken, action: 'register-agent', agentId: undefined };
const refusal = (status: number, error?: string, description?: string) =>
  new IdpRefusalError('https://idp.example.com/api/v1/oidc/token', status, error, description);

describe('describeFailure', () => {
  it('passes input problems through as they are', () => {
    expect(describeFailure(new InputError(['`name` is required']), issueToken)).toBe('Invalid action inputs: `name` is required.');
  });

  it('points a missing ID token at the permissions block and fork pull requests', () => {
    expect(describeFailure(new IdTokenUnavailableError('Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable'), issueToken)).toBe(
      "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
        '(pull requests from forks receive no ID token). Reason: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable',
    );
  });

  it("tells issue-token users to register a trust policy for the repository and agent, in the seed's words", () => {
    expect(describeFailure(refusal(403, 'access_denied', 'Trust policy violation'), issueToken)).toBe(
      'HTTP 403 — Trust policy violation: No trust policy exists for this repository + agent combination ' +
        `(repository octo-org/octo-repo, agent ${AGENT}). Register a trust policy using the Prerequisites steps in the ` +
        'issue-token README: POST https://idp.example.com/api/v1/oidc/trust-policies with {"provider": "github", ' +
        `"repository": "octo-org/octo-repo", "agentId": "${AGENT}"}.`,
    );
  });

  it('tells register-agent users to register a registration policy (no agentId)', () => {
    expect(describeFailure(refusal(403, 'access_denied', 'Trust policy violation'), registerAgent)).toBe(
      'HTTP 403 — Trust policy violation: No registration trust policy (a policy without `agentId`) exists for this ' +
        'repository (octo-org/octo-repo). Register one using the Prerequisites steps in the register-agent README: ' +
        'POST https://idp.example.com/api/v1/oidc/trust-policies with {"provider": "github", "repository": "octo-org/octo-repo"}.',
    );
  });

  it("explains a branch refusal in the seed's words, naming the current ref", () => {
    expect(describeFailure(refusal(403, 'access_denied', 'Branch not permitted'), issueToken)).toBe(
      'HTTP 403 — Branch not permitted: A trust policy exists but specifies a branch constraint that does not match ' +
        "the current workflow's branch (refs/heads/feature). Add a policy for the current branch, or remove the " +
        'branch constraint to allow all branches.',
    );
  });

  it('names the other trust-policy constraints for any other access_denied', () => {
    expect(describeFailure(refusal(403, 'access_denied', 'Event not permitted'), issueToken)).toBe(
      `HTTP 403 — Event not permitted: the IdP refused this workflow for agent ${AGENT}. Check the trust policy's ` +
        'constraints (environment, workflowRef, jobWorkflowRef, allowedEvents) against this run.',
    );
  });

  it('says a refused client is a suspended or decommissioned agent', () => {
    expect(describeFailure(refusal(403, 'unauthorized_client', 'Agent is suspended'), issueToken)).toBe(
      `HTTP 403 — unauthorized_client: agent ${AGENT} is suspended or decommissioned and cannot receive tokens ` +
        `(Agent is suspended). Reactivate it (POST /api/v1/agents/${AGENT}/reactivate) or use an active agent.`,
    );
  });

  it('points a refused ID token at the audience input and OIDC_AUDIENCE', () => {
    expect(describeFailure(refusal(400, 'invalid_grant', 'ID token audience mismatch'), issueToken)).toBe(
      'HTTP 400 — invalid_grant: the IdP refused the GitHub ID token (ID token audience mismatch). The `audience` ' +
        "input (https://idp.example.com) must equal the server's OIDC_AUDIENCE (by default its PUBLIC_URL), and the " +
        "server's GITHUB_OIDC_ISSUER must be this runner's token issuer.",
    );
  });

  it('names the scope input of each action on invalid_scope', () => {
    expect(describeFailure(refusal(400, 'invalid_scope', 'Scope admin:orgs not held'), issueToken)).toBe(
      'HTTP 400 — invalid_scope: Scope admin:orgs not held. The `scope` input may name only scopes the agent may hold.',
    );
    expect(describeFailure(refusal(400, 'invalid_scope'), registerAgent)).toBe(
      'HTTP 400 — invalid_scope. The `scopes` input may name only scopes the agent may hold.',
    );
  });

  it("does not double the full stop of the IdP's own sentence on invalid_scope", () => {
    expect(describeFailure(refusal(400, 'invalid_scope', "Requested scope 'audit:read' is not available."), registerAgent)).toBe(
      "HTTP 400 — invalid_scope: Requested scope 'audit:read' is not available. The `scopes` input may name only " +
        'scopes the agent may hold.',
    );
  });

  it('reads a 404 as a wrong api-url', () => {
    expect(describeFailure(refusal(404, 'NOT_FOUND', 'No such route'), issueToken)).toBe(
      'HTTP 404 from POST https://idp.example.com/api/v1/oidc/token: check that `api-url` (https://idp.example.com) ' +
        'is the base URL of a SentryAgent IdP, without /api/v1.',
    );
  });

  it('reads a redirect as a wrong api-url and names its target', () => {
    const error = new IdpRefusalError('http://idp.example.com/api/v1/oidc/token', 301, undefined, undefined, 'https://idp.example.com/api/v1/oidc/token');
    expect(describeFailure(error, issueToken)).toBe(
      'HTTP 301 from POST http://idp.example.com/api/v1/oidc/token (redirect to https://idp.example.com/api/v1/oidc/token): ' +
        "set `api-url` to the IdP's final base URL. Redirects are not followed, so the ID token is never sent elsewhere.",
    );
  });

  it('reports any other refusal with its status, code and description', () => {
    expect(describeFailure(refusal(401, 'invalid_client', 'Bad credentials'), issueToken)).toBe(
      'HTTP 401 — invalid_client: Bad credentials (POST https://idp.example.com/api/v1/oidc/token).',
    );
  });

  it.each([
    ['connection refused (ECONNREFUSED)', 'Check that `api-url` is right and that the IdP is up and reachable from this runner.'],
    ['HTTP 503 SERVICE_UNAVAILABLE: Database unreachable', 'The IdP answers but is failing; check its health (/readyz) and logs.'],
    ['HTTP 429 RATE_LIMIT_EXCEEDED: Too many requests', 'The IdP is rate limiting these requests; re-run the job later.'],
  ])('reports an unreachable IdP after its last failure, %s', (lastReason, hint) => {
    expect(describeFailure(new IdpUnreachableError('https://idp.example.com', 5, 58_123, lastReason), issueToken)).toBe(
      `Could not reach SentryAgent IdP at https://idp.example.com: ${lastReason}, after 5 attempts over 58.1 s. ${hint}`,
    );
  });

  it('reports a malformed success as a wrong api-url', () => {
    expect(describeFailure(new UnexpectedResponseError('https://idp.example.com/api/v1/oidc/token', 200, 'no access_token in the body'), issueToken)).toBe(
      'Unexpected response from https://idp.example.com/api/v1/oidc/token: HTTP 200, no access_token in the body. ' +
        'Check that `api-url` (https://idp.example.com) points at a SentryAgent IdP.',
    );
  });
});
