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
  // whatever happened, no log line may start a workflow command or carry a token
  expect(core.workflowCommandLines()).toEqual([]);
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

  it('exports the token as SENTRYAGENT_TOKEN only after masking it, when export-env is true', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    core.inputs['export-env'] = 'true';
    await run();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.callsOf('exportVariable')).toEqual([['SENTRYAGENT_TOKEN', ACCESS_TOKEN]]);
    const fns = core.calls.map((call) => call.fn);
    expect(fns.indexOf('setSecret')).toBeGreaterThanOrEqual(0);
    expect(fns.indexOf('setSecret')).toBeLessThan(fns.indexOf('exportVariable'));
  });

  it('exports no environment variable by default', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    await run();
    expect(core.callsOf('setOutput')).toHaveLength(2);
    expect(core.callsOf('exportVariable')).toEqual([]);
  });

  it('refuses an export-env that is not a boolean, before any request', async () => {
    core.inputs['export-env'] = 'yes';
    await run();
    expect(core.callsOf('setFailed')).toEqual([['Invalid action inputs: `export-env` must be true or false, got "yes".']]);
    expect(idp.requests).toEqual([]);
  });

  it('asks for the ID token with the audience input when given', async () => {
    idp.script('/api/v1/oidc/token', [issued]);
    core.inputs.audience = 'sentryagent';
    await run();
    expect(core.audiences).toEqual(['sentryagent']);
  });

  it('outputs expires_at in the form toISOString writes, whatever offset it came with', async () => {
    idp.script('/api/v1/oidc/token', [{ status: 200, body: { ...issued.body, expires_at: '2099-01-01T01:00:00+01:00' } }]);
    await run();
    expect(core.callsOf('setOutput')[1]).toEqual(['expires-at', '2099-01-01T00:00:00.000Z']);
  });

  it('counts the expiry from expires_in when the reply has no expires_at', async () => {
    idp.script('/api/v1/oidc/token', [{ status: 200, body: { access_token: ACCESS_TOKEN, token_type: 'bearer', expires_in: 600 } }]);
    const beforeMs = Date.now();
    await run();
    const expiresAtMs = Date.parse(String(core.callsOf('setOutput')[1]?.[1]));
    expect(expiresAtMs).toBeGreaterThanOrEqual(beforeMs + 600_000);
    expect(expiresAtMs).toBeLessThanOrEqual(Date.now() + 600_000);
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

describe('issue-token main step, given a reply that would write workflow commands', () => {
  const INJECTED = '\n::error::pwned';

  it.each<[string, Record<string, unknown>, string]>([
    ['an access_token with a line break', { access_token: `${ACCESS_TOKEN}${INJECTED}` }, 'access_token is not a compact JWS'],
    ['a token_type with a line break', { token_type: `Bearer${INJECTED}` }, 'token_type is not Bearer'],
    ['a scope with a line break', { scope: 'agents:read\n::add-mask::pwned' }, 'scope is not space-separated RFC 6749 scope tokens'],
    ['an expires_at with a line break', { expires_at: `${EXPIRES_AT}${INJECTED}` }, 'expires_at is not an ISO 8601 date-time'],
    ['an expires_at in Unix seconds', { expires_at: 4070908800 }, 'expires_at is not an ISO 8601 date-time'],
    ['an expires_in that is not a whole number', { expires_in: '3600\n::error::pwned' }, 'expires_in is not a positive whole number of seconds'],
    ['a missing token_type', { token_type: undefined }, 'no token_type in the body'],
  ])('fails on %s, printing nothing of the reply and without retrying', async (_, fields, reason) => {
    idp.script('/api/v1/oidc/token', [{ status: 200, body: { ...issued.body, ...fields } }, issued]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        `Unexpected response from ${idp.url}/api/v1/oidc/token: HTTP 200, ${reason}. ` +
          `Check that \`api-url\` (${idp.url}) points at a SentryAgent IdP.`,
      ],
    ]);
    expect(core.callsOf('setOutput')).toEqual([]);
    expect(core.callsOf('saveState')).toEqual([]);
    expect(core.logged().filter((line) => line.includes('pwned'))).toEqual([]);
    expect(idp.requestsTo('/api/v1/oidc/token')).toHaveLength(1);
  });

  it.each<[string, number, Record<string, unknown>, (tokenUrl: string) => string]>([
    [
      'an error_description with line breaks and ANSI escapes',
      401,
      { error: 'invalid_client', error_description: 'Bad client\r\n::error::pwned \u001b[31mred\u001b[0m' },
      (tokenUrl) => `HTTP 401 — invalid_client: Bad client ::error::pwned [31mred[0m (POST ${tokenUrl}).`,
    ],
    [
      'an error_description that starts a workflow command',
      403,
      { error: 'access_denied', error_description: '::add-mask::pwned' },
      () =>
        `HTTP 403 — add-mask::pwned: the IdP refused this workflow for agent ${AGENT}. Check the trust policy's ` +
        'constraints (environment, workflowRef, jobWorkflowRef, allowedEvents) against this run.',
    ],
    [
      'an error code with a line break',
      400,
      { error: 'invalid_scope\n::error::pwned', error_description: 'Nope\u0007' },
      (tokenUrl) => `HTTP 400 — invalid_scope ::error::pwned: Nope (POST ${tokenUrl}).`,
    ],
  ])('fails on %s with that text reduced to one safe line', async (_, status, body, message) => {
    idp.script('/api/v1/oidc/token', [{ status, body }]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([[message(`${idp.url}/api/v1/oidc/token`)]]);
  });

  it('logs the description of a retried failure as one safe line', async () => {
    idp.script('/api/v1/oidc/token', [{ status: 503, body: { code: 'SERVICE_UNAVAILABLE', message: 'busy\n::error::pwned' } }, issued]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.callsOf('info')[0]?.[0]).toMatch(/^Attempt 1 to reach .* failed \(HTTP 503 SERVICE_UNAVAILABLE: busy ::error::pwned\); retrying in /);
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
