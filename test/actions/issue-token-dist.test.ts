/**
 * The bundled issue-token action (actions/issue-token/dist/index.js), run as the runner
 * runs it — main step, then post step — against a stub IdP and a stub ID-token service.
 * `npm run bundle` must have been run after changing the sources (CI checks it is).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { runAction, runPostStep, type ActionRun } from '../support/run-action.js';
import { refusingUrl, startIdTokenService, startStubIdp, type IdTokenService, type StubIdp } from './stub-servers.js';

const AGENT = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.YWNjZXNzLXRva2Vu';
const EXPIRES_AT = '2099-01-01T00:00:00.000Z';
const TOKEN_PATH = '/api/v1/oidc/token';
const REVOKE_PATH = '/api/v1/token/revoke';
const issued = {
  status: 200,
  body: { access_token: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 3600, expires_at: EXPIRES_AT, scope: 'agents:read' },
  headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
};

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
  idp.script(TOKEN_PATH, [issued]);
  idp.script(REVOKE_PATH, [{ status: 200 }]);
});

function issueToken(inputs: Record<string, string> = {}, env: Record<string, string | undefined> = {}) {
  const options = {
    action: 'issue-token',
    inputs: { 'api-url': idp.url, 'agent-id': AGENT, ...inputs },
    env: {
      ACTIONS_ID_TOKEN_REQUEST_URL: idTokens.requestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: idTokens.requestToken,
      SENTRYAGENT_RETRY_MAX_MS: '2000',
      SENTRYAGENT_RETRY_BASE_MS: '20',
      ...env,
    },
  };
  return { main: () => runAction(options), post: (main: ActionRun) => runPostStep(main, options) };
}

/** The token is masked before the step prints it anywhere, and never reaches stderr. */
function expectMaskedBeforeFirstUse(run: ActionRun, secret: string): void {
  const mask = `::add-mask::${secret}`;
  expect(run.stdout).toContain(mask);
  expect(run.stdout.indexOf(secret)).toBe(run.stdout.indexOf(mask) + '::add-mask::'.length);
  expect(run.stderr).not.toContain(secret);
}

describe('issue-token, bundled, main step', () => {
  it('outputs a masked access token and its expiry, and keeps it for the post step', async () => {
    const main = await issueToken().main();
    expect(main.commands.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(main.outputs).toEqual({ 'access-token': ACCESS_TOKEN, 'expires-at': EXPIRES_AT });
    expectMaskedBeforeFirstUse(main, ACCESS_TOKEN);
    expect(main.state).toEqual({ isPost: 'true', token: ACCESS_TOKEN, 'api-url': idp.url, 'expires-at': EXPIRES_AT });

    const idToken = idTokens.issued.at(-1) as string;
    expectMaskedBeforeFirstUse(main, idToken);
    expect(idTokens.audiences.at(-1)).toBe(idp.url);
    expect(idTokens.unauthorized).toBe(0);
    const requests = idp.requestsTo(TOKEN_PATH);
    expect(requests).toHaveLength(1);
    expect(JSON.parse(requests[0].body)).toEqual({ token: idToken, agentId: AGENT });
  });

  it('passes the scope and audience inputs on', async () => {
    await issueToken({ scope: 'agents:read tokens:read', audience: 'https://idp.internal' }).main();
    expect(idTokens.audiences.at(-1)).toBe('https://idp.internal');
    expect(JSON.parse(idp.requestsTo(TOKEN_PATH)[0].body)).toMatchObject({ scope: 'agents:read tokens:read' });
  });

  it('exports the masked token to later steps through GITHUB_ENV when export-env is true', async () => {
    const main = await issueToken({ 'export-env': 'true' }).main();
    expect(main.exitCode).toBe(0);
    expect(main.env).toEqual({ SENTRYAGENT_TOKEN: ACCESS_TOKEN });
    expectMaskedBeforeFirstUse(main, ACCESS_TOKEN);
  });

  it('writes nothing to GITHUB_ENV by default', async () => {
    const main = await issueToken().main();
    expect(main.exitCode).toBe(0);
    expect(main.env).toEqual({});
  });

  it('retries a 503 once with a fresh ID token, then succeeds', async () => {
    idp.script(TOKEN_PATH, [{ status: 503, body: { code: 'SERVICE_UNAVAILABLE', message: 'Try again' } }, issued]);
    const before = idTokens.issued.length;
    const main = await issueToken().main();
    expect(main.exitCode).toBe(0);
    expect(main.outputs['access-token']).toBe(ACCESS_TOKEN);
    const sent = idp.requestsTo(TOKEN_PATH).map((request) => JSON.parse(request.body).token);
    expect(sent).toEqual(idTokens.issued.slice(before));
    expect(sent).toHaveLength(2);
    expect(sent[0]).not.toBe(sent[1]);
  });

  it("honours a 429's Retry-After", async () => {
    idp.script(TOKEN_PATH, [{ status: 429, headers: { 'Retry-After': '1' }, body: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down' } }, issued]);
    const main = await issueToken().main();
    expect(main.exitCode).toBe(0);
    expect(main.stdout).toContain(`Attempt 1 to reach ${idp.url}${TOKEN_PATH} failed (HTTP 429 RATE_LIMIT_EXCEEDED: Slow down); retrying in 1.0 s.`);
    expect(idp.requestsTo(TOKEN_PATH)).toHaveLength(2);
  });

  it('fails on a trust policy violation with the instructions to register one, without retrying', async () => {
    idp.script(TOKEN_PATH, [{ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } }]);
    const main = await issueToken().main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'HTTP 403 — Trust policy violation: No trust policy exists for this repository + agent combination ' +
        `(repository octo-org/octo-repo, agent ${AGENT}). Register a trust policy using the Prerequisites steps in the ` +
        `issue-token README: POST ${idp.url}/api/v1/oidc/trust-policies with {"provider": "github", ` +
        `"repository": "octo-org/octo-repo", "agentId": "${AGENT}"}.`,
    ]);
    expect(main.outputs).toEqual({});
    expect(idp.requestsTo(TOKEN_PATH)).toHaveLength(1);
  });

  it('fails on a branch refusal with the seed text, naming the branch', async () => {
    idp.script(TOKEN_PATH, [{ status: 403, body: { error: 'access_denied', error_description: 'Branch not permitted' } }]);
    const main = await issueToken({}, { GITHUB_REF: 'refs/heads/feature/x' }).main();
    expect(main.commands.errors).toEqual([
      'HTTP 403 — Branch not permitted: A trust policy exists but specifies a branch constraint that does not match ' +
        "the current workflow's branch (refs/heads/feature/x). Add a policy for the current branch, or remove the " +
        'branch constraint to allow all branches.',
    ]);
    expect(idp.requestsTo(TOKEN_PATH)).toHaveLength(1);
  });

  it('fails for a suspended agent', async () => {
    idp.script(TOKEN_PATH, [{ status: 403, body: { error: 'unauthorized_client', error_description: 'Agent is not active' } }]);
    const main = await issueToken().main();
    expect(main.commands.errors).toEqual([
      `HTTP 403 — unauthorized_client: agent ${AGENT} is suspended or decommissioned and cannot receive tokens ` +
        `(Agent is not active). Reactivate it (POST /api/v1/agents/${AGENT}/reactivate) or use an active agent.`,
    ]);
  });

  it('fails on a refused ID token with the audience hint', async () => {
    idp.script(TOKEN_PATH, [{ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid audience' } }]);
    const main = await issueToken({ audience: 'wrong-audience' }).main();
    expect(main.commands.errors).toEqual([
      'HTTP 400 — invalid_grant: the IdP refused the GitHub ID token (Invalid audience). The `audience` input ' +
        "(wrong-audience) must equal the server's OIDC_AUDIENCE (by default its PUBLIC_URL), and the server's " +
        "GITHUB_OIDC_ISSUER must be this runner's token issuer.",
    ]);
  });

  it('fails on a reply whose scope would write a workflow command, printing none of it', async () => {
    idp.script(TOKEN_PATH, [{ ...issued, body: { ...issued.body, scope: 'agents:read\n::error::pwned' } }]);
    const main = await issueToken().main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      `Unexpected response from ${idp.url}${TOKEN_PATH}: HTTP 200, scope is not space-separated RFC 6749 scope tokens. ` +
        `Check that \`api-url\` (${idp.url}) points at a SentryAgent IdP.`,
    ]);
    expect(main.outputs).toEqual({});
    expect(main.state).toEqual({ isPost: 'true' });
    expect(main.stdout + main.stderr).not.toContain('pwned');
  });

  it('refuses a plain-http api-url to a host that is not loopback, before any request', async () => {
    const before = idTokens.issued.length;
    const main = await issueToken({ 'api-url': 'http://idp.example.com' }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'Invalid action inputs: `api-url` must use https: plain http, which sends the GitHub ID token in clear, is ' +
        'accepted only for loopback (localhost, 127.0.0.0/8, [::1]), got "http://idp.example.com".',
    ]);
    expect(idTokens.issued.length).toBe(before);
  });

  it('fails without `id-token: write` (no ID-token request URL), before calling the IdP', async () => {
    const main = await issueToken({}, { ACTIONS_ID_TOKEN_REQUEST_URL: undefined, ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
        '(pull requests from forks receive no ID token). Reason: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable',
    ]);
    expect(idp.requests).toEqual([]);
  });

  it('fails on invalid inputs before any request', async () => {
    const before = idTokens.issued.length;
    const main = await issueToken({ 'api-url': 'localhost:3000', 'agent-id': 'deploy-bot' }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toEqual([
      'Invalid action inputs: `api-url` must be an http(s) URL, got "localhost:3000"; ' +
        '`agent-id` must be the agent\'s UUID, got "deploy-bot".',
    ]);
    expect(idTokens.issued.length).toBe(before);
    expect(idp.requests).toEqual([]);
  });

  it('fails naming the api-url when the IdP refuses connections, after retrying within the budget', async () => {
    const url = await refusingUrl();
    const before = idTokens.issued.length;
    const started = Date.now();
    const main = await issueToken({ 'api-url': url }).main();
    expect(main.exitCode).toBe(1);
    expect(main.commands.errors).toHaveLength(1);
    expect(main.commands.errors[0]).toMatch(
      new RegExp(
        `^Could not reach SentryAgent IdP at ${url}: connection refused \\(ECONNREFUSED\\), after (\\d+) attempts ` +
          'over \\d+\\.\\d s\\. Check that `api-url` is right and that the IdP is up and reachable from this runner\\.$',
      ),
    );
    const attempts = Number(/after (\d+) attempts/.exec(main.commands.errors[0])?.[1]);
    expect(attempts).toBeGreaterThan(2);
    expect(idTokens.issued.length - before).toBe(attempts);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('issue-token, bundled, post step', () => {
  it('revokes the token the main step issued, authenticated by that token', async () => {
    const action = issueToken();
    const post = await action.post(await action.main());
    expect(post.exitCode).toBe(0);
    expect(post.commands.warnings).toEqual([]);
    const revocations = idp.requestsTo(REVOKE_PATH);
    expect(revocations).toHaveLength(1);
    expect(revocations[0].headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(revocations[0].headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(revocations[0].body).toBe(`token=${ACCESS_TOKEN}`);
    expect(post.stdout).toContain('Revoked the access token issued for this job.');
    expectMaskedBeforeFirstUse(post, ACCESS_TOKEN);
    expect(idp.requestsTo(TOKEN_PATH)).toHaveLength(1);
  });

  it('revokes nothing when revoke is false', async () => {
    const action = issueToken({ revoke: 'false' });
    const main = await action.main();
    expect(main.state).toEqual({ isPost: 'true' });
    const post = await action.post(main);
    expect(post.exitCode).toBe(0);
    expect(idp.requestsTo(REVOKE_PATH)).toEqual([]);
    expect(post.stdout).toContain('No access token to revoke.');
  });

  it('revokes nothing, and does not run the main step again, after a failed main step', async () => {
    idp.script(TOKEN_PATH, [{ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } }]);
    const action = issueToken();
    const post = await action.post(await action.main());
    expect(post.exitCode).toBe(0);
    expect(post.commands.errors).toEqual([]);
    expect(idp.requestsTo(TOKEN_PATH)).toHaveLength(1);
    expect(idp.requestsTo(REVOKE_PATH)).toEqual([]);
  });

  it('only warns when revocation keeps failing', async () => {
    idp.script(REVOKE_PATH, [{ status: 500, body: { code: 'INTERNAL_SERVER_ERROR', message: 'An unexpected error occurred' } }]);
    const action = issueToken();
    const post = await action.post(await action.main());
    expect(post.exitCode).toBe(0);
    expect(post.commands.errors).toEqual([]);
    expect(post.commands.warnings).toHaveLength(1);
    expect(post.commands.warnings[0]).toMatch(
      new RegExp(
        `^Could not revoke the access token; it stays valid until ${EXPIRES_AT}\\. Could not reach SentryAgent IdP at ` +
          `${idp.url}: HTTP 500 INTERNAL_SERVER_ERROR: An unexpected error occurred, after \\d+ attempts over`,
      ),
    );
    expect(idp.requestsTo(REVOKE_PATH).length).toBeGreaterThan(1);
  });
});
