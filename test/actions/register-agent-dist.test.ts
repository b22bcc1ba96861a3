/**
 * The bundled register-agent action (actions/register-agent/dist/index.js), run as the
 * runner runs it, against a stub IdP and a stub ID-token service.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { runAction } from '../support/run-action.js';
import { refusingUrl, startIdTokenService, startStubIdp, type IdTokenService, type StubIdp } from './stub-servers.js';

const AGENT = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';
const REGISTER_PATH = '/api/v1/oidc/register';
const agent = (created: boolean) => ({
  agentId: AGENT,
  name: 'deploy-bot',
  status: 'active',
  scopes: ['agents:read'],
  createdAt: '2026-01-01T00:00:00.000Z',
  created,
});

let idp: StubIdp;
let idTokens: IdTokenService;

beforeAll(async () => {
  idp = await startStubIdp();
  idTokens = await startIdTokenService();
});
afterAll(async () => {
  await idp.close();
  await idTokens.close();
});
beforeEach(() => {
  idp.requests.length = 0;
});

function registerAgent(inputs: Record<string, string> = {}, env: Record<string, string | undefined> = {}) {
  return runAction({
    action: 'register-agent',
    inputs: { 'api-url': idp.url, name: 'deploy-bot', ...inputs },
    env: {
      ACTIONS_ID_TOKEN_REQUEST_URL: idTokens.requestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: idTokens.requestToken,
      SENTRYAGENT_RETRY_MAX_MS: '2000',
      SENTRYAGENT_RETRY_BASE_MS: '20',
      ...env,
    },
  });
}

describe('register-agent, bundled', () => {
  it('registers the agent and outputs agent-id and created=true', async () => {
    idp.script(REGISTER_PATH, [{ status: 201, body: agent(true) }]);
    const run = await registerAgent({ description: 'Deploys', scopes: 'agents:read tokens:read' });
    expect(run.commands.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toEqual({ 'agent-id': AGENT, created: 'true' });
    expect(JSON.parse(idp.requestsTo(REGISTER_PATH)[0].body)).toEqual({
      token: idTokens.issued.at(-1),
      name: 'deploy-bot',
      description: 'Deploys',
      scopes: ['agents:read', 'tokens:read'],
    });
    expect(idTokens.audiences.at(-1)).toBe(idp.url);
    expect(run.stdout).toContain(`::add-mask::${idTokens.issued.at(-1)}`);
  });

  it('outputs created=false on a re-run that finds the agent', async () => {
    idp.script(REGISTER_PATH, [{ status: 200, body: agent(false) }]);
    const run = await registerAgent();
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toEqual({ 'agent-id': AGENT, created: 'false' });
  });

  it('retries a 503 with a fresh ID token', async () => {
    idp.script(REGISTER_PATH, [{ status: 503 }, { status: 201, body: agent(true) }]);
    const run = await registerAgent();
    expect(run.exitCode).toBe(0);
    const sent = idp.requestsTo(REGISTER_PATH).map((request) => JSON.parse(request.body).token);
    expect(sent).toHaveLength(2);
    expect(sent[0]).not.toBe(sent[1]);
  });

  it('fails without a registration policy, naming the repository, without retrying', async () => {
    idp.script(REGISTER_PATH, [{ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } }]);
    const run = await registerAgent({}, { GITHUB_REPOSITORY: 'acme/widgets' });
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      'HTTP 403 — Trust policy violation: No registration trust policy (a policy without `agentId`) exists for this ' +
        'repository (acme/widgets). Register one using the Prerequisites steps in the register-agent README: ' +
        `POST ${idp.url}/api/v1/oidc/trust-policies with {"provider": "github", "repository": "acme/widgets"}.`,
    ]);
    expect(run.outputs).toEqual({});
    expect(idp.requestsTo(REGISTER_PATH)).toHaveLength(1);
  });

  it('fails on a reply whose agentId would write a workflow command, printing none of it', async () => {
    idp.script(REGISTER_PATH, [{ status: 201, body: { ...agent(true), agentId: `${AGENT}\n::error::pwned` } }]);
    const run = await registerAgent();
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      `Unexpected response from ${idp.url}${REGISTER_PATH}: HTTP 201, agentId is not a UUID. ` +
        `Check that \`api-url\` (${idp.url}) points at a SentryAgent IdP.`,
    ]);
    expect(run.outputs).toEqual({});
    expect(run.stdout + run.stderr).not.toContain('pwned');
  });

  it('fails without `id-token: write`', async () => {
    const run = await registerAgent({}, { ACTIONS_ID_TOKEN_REQUEST_URL: undefined, ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined });
    expect(run.commands.errors).toEqual([
      "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
        '(pull requests from forks receive no ID token). Reason: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable',
    ]);
    expect(idp.requests).toEqual([]);
  });

  it('fails on invalid inputs before any request', async () => {
    const run = await registerAgent({ 'api-url': 'https://idp.example.com/api/v1/', name: '' });
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors).toEqual([
      'Invalid action inputs: `api-url` must be the IdP base URL without /api/v1, got "https://idp.example.com/api/v1/"; `name` is required.',
    ]);
    expect(idp.requests).toEqual([]);
  });

  it('fails naming the api-url when the IdP refuses connections', async () => {
    const url = await refusingUrl();
    const run = await registerAgent({ 'api-url': url });
    expect(run.exitCode).toBe(1);
    expect(run.commands.errors[0]).toMatch(
      new RegExp(`^Could not reach SentryAgent IdP at ${url}: connection refused \\(ECONNREFUSED\\), after \\d+ attempts over`),
    );
  });
});
