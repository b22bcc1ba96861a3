import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, json, send } from '../support/api.js';

const AUDIENCE = 'https://idp.test/github';
let github: FakeGitHubIssuer;
let server: TestServer;
let admin: string;

beforeAll(async () => {
  github = await startFakeGitHubIssuer({ audience: AUDIENCE });
  server = await startTestServer({ env: { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE } });
  admin = await adminToken(server);
});
afterAll(async () => {
  await server.stop();
  await github.close();
});

describe('GitHub exchange, end to end', () => {
  it('issues a token with provenance for a matching policy, and refuses a replay', async () => {
    const agent = await createAgent(server, admin, { scopes: ['agents:read'] });
    const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/octo-repo', branch: 'main', agentId: agent.agentId }, admin));
    expect(policy.status).toBe(201);
    const idToken = await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE });
    const reply = await send(server, '/api/v1/oidc/token', json('POST', { token: idToken, agentId: agent.agentId }));
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, expires_at: expect.stringMatching(/Z$/), scope: 'agents:read' });
    const introspection = await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: reply.body.access_token })));
    expect(introspection.body).toMatchObject({ active: true, sub: agent.agentId, repository: 'octo-org/octo-repo', ref: 'refs/heads/main', run_id: '9876543210' });
    const replay = await send(server, '/api/v1/oidc/token', json('POST', { token: idToken, agentId: agent.agentId }));
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    const bound = await send(server, `/api/v1/oidc/trust-policies/${policy.body.id}`, bearer(admin));
    expect(bound.body).toMatchObject({ repositoryId: '892312441', repositoryOwnerId: '119938721' });
  });

  it('registers an agent idempotently under a registration policy', async () => {
    await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/octo-repo', scopes: ['agents:read'] }, admin));
    const register = async () =>
      send(server, '/api/v1/oidc/register', json('POST', { token: await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE }), name: 'ci-bot' }));
    const first = await register();
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ name: 'ci-bot', created: true, scopes: ['agents:read'], registeredRepository: 'octo-org/octo-repo' });
    const second = await register();
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ agentId: first.body.agentId, created: false });
    const exchange = await send(server, '/api/v1/oidc/token', json('POST', { token: await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE }), agentId: first.body.agentId }));
    expect(exchange.status).toBe(200);
  });
});
