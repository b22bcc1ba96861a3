import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createFakeCore } from './fake-core.js';
import { refusingUrl, startStubIdp, type LoopbackHost, type StubIdp } from './stub-servers.js';

const core = createFakeCore();
jest.unstable_mockModule('@actions/core', () => core.module);
const { run } = await import('../../actions/issue-token/src/run.js');
const { runPost } = await import('../../actions/issue-token/src/post.js');

const AGENT = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.access.c2VjcmV0';
const EXPIRES_AT = '2099-01-01T00:00:00.000Z';
const issued = {
  status: 200,
  body: { access_token: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 3600, expires_at: EXPIRES_AT, scope: 'agents:read' },
};
const savedEnv = { ...process.env };
let idp: StubIdp;

beforeAll(async () => {
  Object.assign(process.env, {
    SENTRYAGENT_RETRY_MAX_MS: '3000',
    SENTRYAGENT_RETRY_BASE_MS: '10',
    GITHUB_REPOSITORY: 'octo-org/octo-repo',
    GITHUB_REF: 'refs/heads/main',
  });
  idp = await startStubIdp();
});
afterAll(async () => {
  process.env = savedEnv;
  await idp.close();
});
beforeEach(() => {
  core.reset();
  idp.requests.length = 0;
  core.inputs = { 'api-url': idp.url, 'agent-id': AGENT, revoke: 'true' };
});
afterEach(() => {
  // whatever happened, no log line may carry a token
  for (const line of core.logged()) {
    expect(line).not.toContain(ACCESS_TOKEN);
    for (const idToken of core.idTokens) expect(line).not.toContain(idToken);
  }
});

describe('issue-token main step', () => {
  it('refuses every invalid input at once, before asking for an ID token or calling the IdP', async () => {
    core.inputs = { 'api-url': 'idp.example.com', 'agent-id': 'my-agent', revoke: 'maybe' };
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        'Invalid action inputs: `api-url` must be an http(s) URL, got "idp.example.com"; ' +
          '`agent-id` must be the agent\'s UUID, got "my-agent"; `revoke` must be true or false, got "maybe".',
      ],
    ]);
    expect(core.callsOf('getIDToken')).toEqual([]);
    expect(idp.requests).toEqual([]);
  });

  it('refuses a plain-http api-url to a host that is not loopback, before asking for an ID token', async () => {
    core.inputs['api-url'] = 'http://example.com';
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        'Invalid action inputs: `api-url` must use https: plain http, which sends the GitHub ID token in clear, is ' +
          'accepted only for loopback (localhost, 127.0.0.0/8, [::1]), got "http://example.com".',
      ],
    ]);
    // The ID token is fetched for each attempt just before it is sent: none fetched, none sent.
    expect(core.callsOf('getIDToken')).toEqual([]);
    expect(core.callsOf('setOutput')).toEqual([]);
  });

  it.each<LoopbackHost>(['127.0.0.1', 'localhost', '::1'])('accepts a plain-http api-url on loopback host %s', async (host) => {
    const loopbackIdp = await startStubIdp({ '/api/v1/oidc/token': [issued] }, host);
    try {
      core.inputs['api-url'] = loopbackIdp.url;
      await run();
      expect(core.callsOf('setFailed')).toEqual([]);
      expect(loopbackIdp.requestsTo('/api/v1/oidc/token')).toHaveLength(1);
      expect(core.callsOf('setOutput')[0]).toEqual(['access-token', ACCESS_TOKEN]);
    } finally {
      await loopbackIdp.close();
    }
  });

  it('trades an ID token for an access token, masking it before it is output or logged', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    core.inputs.scope = 'agents:read, tokens:read';
    await run();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.audiences).toEqual([idp.url]);
    const [request] = idp.requestsTo('/api/v1/oidc/token');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({ token: core.idTokens[0], agentId: AGENT, scope: 'agents:read tokens:read' });
    expect(core.callsOf('setOutput')).toEqual([
      ['access-token', ACCESS_TOKEN],
      ['expires-at', EXPIRES_AT],
    ]);
    const firstUse = core.calls.findIndex((call) => call.fn !== 'getInput' && call.fn !== 'getIDToken' && call.args.includes(ACCESS_TOKEN));
    expect(core.calls[firstUse]).toEqual({ fn: 'setSecret', args: [ACCESS_TOKEN] });
    expect(core.calls.slice(0, firstUse).filter((call) => ['info', 'warning', 'debug', 'setOutput'].includes(call.fn))).toEqual([]);
  });

  it('keeps the token, api-url and expiry for the post step when revoke is true', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    await run();
    expect(core.callsOf('saveState')).toEqual([
      ['token', ACCESS_TOKEN],
      ['api-url', idp.url],
      ['expires-at', EXPIRES_AT],
    ]);
  });

  it('keeps nothing for the post step when revoke is false', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    core.inputs.revoke = 'false';
    await run();
    expect(core.callsOf('saveState')).toEqual([]);
    expect(core.callsOf('setOutput')).toHaveLength(2);
  });

  it('asks for the ID token with the audience input when given', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    core.inputs.audience = 'sentryagent';
    await run();
    expect(core.audiences).toEqual(['sentryagent']);
  });

  it('reads expires_at given as Unix seconds, and falls back to expires_in', async () => {
    idp.script('/api/v1/oidc/token', [{ status: 200, body: { access_token: ACCESS_TOKEN, expires_at: 4070908800 } }]);
    await run();
    expect(core.callsOf('setOutput')[1]).toEqual(['expires-at', '2099-01-01T00:00:00.000Z']);
  });

  it('uses a new ID token for each attempt after a 503', async () => {
    idp.script('/api/v1/oidc/token', [{ status: 503, body: { code: 'SERVICE_UNAVAILABLE', message: 'busy' } }, issued]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([]);
    const tokensSent = idp.requestsTo('/api/v1/oidc/token').map((request) => JSON.parse(request.body).token);
    expect(tokensSent).toEqual(core.idTokens);
    expect(new Set(tokensSent).size).toBe(2);
  });

  it('fails with the trust-policy instructions on a 403, without retrying', async () => {
    idp.script('/api/v1/oidc/token', [{ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } }, issued]);
    await run();
    expect(idp.requestsTo('/api/v1/oidc/token')).toHaveLength(1);
    expect(core.callsOf('setFailed')).toEqual([
      [
        'HTTP 403 — Trust policy violation: No trust policy exists for this repository + agent combination ' +
          `(repository octo-org/octo-repo, agent ${AGENT}). Register a trust policy using the Prerequisites steps in ` +
          `the issue-token README: POST ${idp.url}/api/v1/oidc/trust-policies with {"provider": "github", ` +
          `"repository": "octo-org/octo-repo", "agentId": "${AGENT}"}.`,
      ],
    ]);
    expect(core.callsOf('setOutput')).toEqual([]);
  });

  it('fails with the id-token permission hint when no ID token can be had', async () => {
    core.idTokenError = new Error('Error message: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable');
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
          '(pull requests from forks receive no ID token). Reason: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable',
      ],
    ]);
    expect(idp.requests).toEqual([]);
  });

  it('fails naming the api-url when the IdP cannot be reached', async () => {
    const url = await refusingUrl();
    core.inputs['api-url'] = url;
    await run();
    const [[message]] = core.callsOf('setFailed') as [[string]];
    expect(message).toMatch(
      new RegExp(
        `^Could not reach SentryAgent IdP at ${url}: connection refused \\(ECONNREFUSED\\), after \\d+ attempts over \\d+\\.\\d s\\. ` +
          'Check that `api-url` is right and that the IdP is up and reachable from this runner\\.$',
      ),
    );
    expect(core.idTokens.length).toBeGreaterThan(1);
  });
});

describe('issue-token post step', () => {
  beforeEach(() => {
    core.state = { isPost: 'true', token: ACCESS_TOKEN, 'api-url': idp.url, 'expires-at': EXPIRES_AT };
  });

  it('revokes the token with itself as Bearer (RFC 7009, form-encoded)', async () => {
    idp.script('/api/v1/token/revoke', [{ status: 200 }]);
    await runPost();
    const [request] = idp.requestsTo('/api/v1/token/revoke');
    expect(request.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request.body).toBe(`token=${ACCESS_TOKEN}`);
    expect(core.calls.find((call) => call.args.includes(ACCESS_TOKEN))).toEqual({ fn: 'setSecret', args: [ACCESS_TOKEN] });
    expect(core.callsOf('info')).toEqual([['Revoked the access token issued for this job.']]);
    expect(core.callsOf('warning')).toEqual([]);
  });

  it('does nothing when the main step kept no token', async () => {
    core.state = { isPost: 'true' };
    await runPost();
    expect(idp.requests).toEqual([]);
    expect(core.callsOf('info')).toEqual([['No access token to revoke.']]);
  });

  it('does not revoke a token that has already expired', async () => {
    core.state['expires-at'] = '2001-01-01T00:00:00.000Z';
    await runPost();
    expect(idp.requests).toEqual([]);
  });

  it('warns, and never fails the job, when revocation is refused', async () => {
    idp.script('/api/v1/token/revoke', [{ status: 401, body: { code: 'UNAUTHORIZED', message: 'Token revoked' } }]);
    await runPost();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.callsOf('warning')).toEqual([
      [
        `Could not revoke the access token; it stays valid until ${EXPIRES_AT}. ` +
          `HTTP 401 — UNAUTHORIZED: Token revoked (POST ${idp.url}/api/v1/token/revoke).`,
      ],
    ]);
  });

  it('warns when the IdP cannot be reached for revocation', async () => {
    core.state['api-url'] = await refusingUrl();
    await runPost();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.callsOf('warning')[0]?.[0]).toMatch(/^Could not revoke the access token; it stays valid until .* Could not reach SentryAgent IdP at /);
  });
});
