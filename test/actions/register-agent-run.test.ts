import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createFakeCore } from './fake-core.js';
import { startStubIdp, type LoopbackHost, type StubIdp } from './stub-servers.js';

const core = createFakeCore();
jest.unstable_mockModule('@actions/core', () => core.module);
const { run } = await import('../../actions/register-agent/src/run.js');

const AGENT = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';
const agent = (created?: boolean) => ({
  agentId: AGENT,
  name: 'deploy-bot',
  status: 'active',
  scopes: ['agents:read'],
  createdAt: '2026-01-01T00:00:00.000Z',
  ...(created !== undefined && { created }),
});
const savedEnv = { ...process.env };
let idp: StubIdp;

beforeAll(async () => {
  Object.assign(process.env, { SENTRYAGENT_RETRY_MAX_MS: '3000', SENTRYAGENT_RETRY_BASE_MS: '10', GITHUB_REPOSITORY: 'octo-org/octo-repo' });
  idp = await startStubIdp();
});
afterAll(async () => {
  process.env = savedEnv;
  await idp.close();
});
beforeEach(() => {
  core.reset();
  idp.requests.length = 0;
  core.inputs = { 'api-url': `${idp.url}/`, name: 'deploy-bot' };
});
afterEach(() => {
  // whatever the IdP answered, no log line may start a workflow command
  expect(core.workflowCommandLines()).toEqual([]);
});

describe('register-agent', () => {
  it('refuses every invalid input at once, before any request', async () => {
    core.inputs = { 'api-url': 'https://idp.example.com/api/v1', name: '  ', scopes: 'agents:read "x"' };
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        'Invalid action inputs: `api-url` must be the IdP base URL without /api/v1, got "https://idp.example.com/api/v1"; ' +
          '`name` is required; `scopes` has invalid scope names: "\\"x\\"".',
      ],
    ]);
    expect(core.callsOf('getIDToken')).toEqual([]);
    expect(idp.requests).toEqual([]);
  });

  it('refuses a plain-http api-url to a host that is not loopback, before asking for an ID token', async () => {
    core.inputs['api-url'] = 'http://idp.example.com:3000';
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        'Invalid action inputs: `api-url` must use https: plain http, which sends the GitHub ID token in clear, is ' +
          'accepted only for loopback (localhost, 127.0.0.0/8, [::1]), got "http://idp.example.com:3000".',
      ],
    ]);
    expect(core.callsOf('getIDToken')).toEqual([]);
    expect(core.callsOf('setOutput')).toEqual([]);
  });

  it.each<LoopbackHost>(['127.0.0.1', 'localhost', '::1'])('accepts a plain-http api-url on loopback host %s', async (host) => {
    const loopbackIdp = await startStubIdp({ '/api/v1/oidc/register': [{ status: 201, body: agent(true) }] }, host);
    try {
      core.inputs['api-url'] = loopbackIdp.url;
      await run();
      expect(core.callsOf('setFailed')).toEqual([]);
      expect(loopbackIdp.requestsTo('/api/v1/oidc/register')).toHaveLength(1);
      expect(core.callsOf('setOutput')).toEqual([
        ['agent-id', AGENT],
        ['created', 'true'],
      ]);
    } finally {
      await loopbackIdp.close();
    }
  });

  it('prints a name carrying a line break and a workflow command as one safe line', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 201, body: agent(true) }]);
    core.inputs.name = 'Fix typo\n::add-mask::secret';
    await run();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.callsOf('info')).toEqual([[`Registered agent "Fix typo ::add-mask::secret" as ${AGENT}.`]]);
  });

  it('registers the agent and outputs its id with created=true', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 201, body: agent(true) }]);
    core.inputs = { ...core.inputs, description: 'Deploys things', scopes: 'agents:read,tokens:read' };
    await run();
    expect(core.callsOf('setFailed')).toEqual([]);
    expect(core.audiences).toEqual([idp.url]);
    expect(JSON.parse(idp.requestsTo('/api/v1/oidc/register')[0].body)).toEqual({
      token: core.idTokens[0],
      name: 'deploy-bot',
      description: 'Deploys things',
      scopes: ['agents:read', 'tokens:read'],
    });
    expect(core.callsOf('setOutput')).toEqual([
      ['agent-id', AGENT],
      ['created', 'true'],
    ]);
  });

  it('sends only the token and name when nothing else is given', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 201, body: agent(true) }]);
    await run();
    expect(JSON.parse(idp.requestsTo('/api/v1/oidc/register')[0].body)).toEqual({ token: core.idTokens[0], name: 'deploy-bot' });
  });

  it('outputs created=false when the repository had already registered that name', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 200, body: agent(false) }]);
    await run();
    expect(core.callsOf('setOutput')).toEqual([
      ['agent-id', AGENT],
      ['created', 'false'],
    ]);
    expect(core.callsOf('info')).toEqual([[`Agent "deploy-bot" was already registered for this repository as ${AGENT}.`]]);
  });

  it('reads created from the status when the body leaves it out', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 201, body: agent() }]);
    await run();
    expect(core.callsOf('setOutput')[1]).toEqual(['created', 'true']);
  });

  it('retries a 502 with a fresh ID token', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 502 }, { status: 201, body: agent(true) }]);
    await run();
    const sent = idp.requestsTo('/api/v1/oidc/register').map((request) => JSON.parse(request.body).token);
    expect(sent).toEqual(core.idTokens);
    expect(sent).toHaveLength(2);
    expect(sent[0]).not.toBe(sent[1]);
  });

  it('fails with the registration-policy instructions on a 403', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } }]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        'HTTP 403 — Trust policy violation: No registration trust policy (a policy without `agentId`) exists for this ' +
          'repository (octo-org/octo-repo). Register one using the Prerequisites steps in the register-agent README: ' +
          `POST ${idp.url}/api/v1/oidc/trust-policies with {"provider": "github", "repository": "octo-org/octo-repo"}.`,
      ],
    ]);
    expect(idp.requestsTo('/api/v1/oidc/register')).toHaveLength(1);
  });

  it('fails when a success carries no agentId', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 201, body: { name: 'deploy-bot' } }]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        `Unexpected response from ${idp.url}/api/v1/oidc/register: HTTP 201, no agentId in the body. ` +
          `Check that \`api-url\` (${idp.url}) points at a SentryAgent IdP.`,
      ],
    ]);
  });
});

describe('register-agent, given a reply that would write workflow commands', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an agentId with a line break', { agentId: 'abc\n::error::pwned' }, 'agentId is not a UUID'],
    ['a UUID agentId followed by a line', { agentId: `${AGENT}\n::error::pwned` }, 'agentId is not a UUID'],
    ['a created that is not a boolean', { created: 'true\n::error::pwned' }, 'created is not a boolean'],
  ])('fails on %s, printing nothing of the reply and without retrying', async (_, fields, reason) => {
    idp.script('/api/v1/oidc/register', [{ status: 201, body: { ...agent(true), ...fields } }, { status: 201, body: agent(true) }]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [
        `Unexpected response from ${idp.url}/api/v1/oidc/register: HTTP 201, ${reason}. ` +
          `Check that \`api-url\` (${idp.url}) points at a SentryAgent IdP.`,
      ],
    ]);
    expect(core.callsOf('setOutput')).toEqual([]);
    expect(core.logged().filter((line) => line.includes('pwned'))).toEqual([]);
    expect(idp.requestsTo('/api/v1/oidc/register')).toHaveLength(1);
  });

  it('fails on an error message with line breaks and control characters, reduced to one safe line', async () => {
    idp.script('/api/v1/oidc/register', [{ status: 409, body: { code: 'CONFLICT', message: 'Name taken\r\n::error::pwned\u0007\u001b[0m' } }]);
    await run();
    expect(core.callsOf('setFailed')).toEqual([
      [`HTTP 409 — CONFLICT: Name taken ::error::pwned[0m (POST ${idp.url}/api/v1/oidc/register).`],
    ]);
  });
});
