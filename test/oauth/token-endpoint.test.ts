import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ADMIN, startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, getToken, send, type AgentWithSecret, platformOrgIdOf } from '../support/api.js';

let server: TestServer;
let admin: string;
let agent: AgentWithSecret;

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
  agent = await createAgent(server, admin, { name: 'reader', scopes: ['agents:read', 'tokens:read'] });
});
afterAll(() => server.stop());

describe('POST /api/v1/token', () => {
  it('issues a signed JWT with the seed 002 response and claims for client_secret_post', async () => {
    const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret, scope: 'agents:read' }));
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'agents:read' });
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.headers.get('pragma')).toBe('no-cache');
    const claims = decodePayload(reply.body.access_token);
    expect(claims).toEqual({
      iss: 'http://idp.test',
      aud: 'http://idp.test',
      sub: agent.agentId,
      client_id: agent.agentId,
      org_id: await platformOrgIdOf(server),
      scope: 'agents:read',
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      iat: expect.any(Number),
      exp: (claims.iat as number) + 3600,
    });
    const header = JSON.parse(Buffer.from(reply.body.access_token.split('.')[0], 'base64url').toString());
    const jwks = await send(server, '/.well-known/jwks.json');
    expect(jwks.body.keys.map((key: { kid: string }) => key.kid)).toContain(header.kid);
    expect(header.alg).toBe('RS256');
  });

  it('accepts client_secret_basic with form-urlencoded credentials', async () => {
    const reply = await send(server, '/api/v1/token', {
      ...form({ grant_type: 'client_credentials' }),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(agent.agentId, agent.clientSecret) },
    });
    expect(reply.status).toBe(200);
    expect(reply.body.scope).toBe('agents:read tokens:read');
  });

  it('grants every held scope when scope is omitted', async () => {
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    expect(decodePayload(token).scope).toBe('agents:read tokens:read');
  });

  it('refuses both authentication methods at once', async () => {
    const reply = await send(server, '/api/v1/token', {
      ...form({ grant_type: 'client_credentials', client_secret: agent.clientSecret }),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(agent.agentId, agent.clientSecret) },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe('invalid_request');
  });

  it('answers a missing grant_type with invalid_request', async () => {
    const reply = await send(server, '/api/v1/token', form({ client_id: agent.agentId, client_secret: agent.clientSecret }));
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ error: 'invalid_request', error_description: "The 'grant_type' parameter is required." });
  });

  it('answers other grant types with unsupported_grant_type', async () => {
    for (const grant of ['password', 'authorization_code', 'refresh_token', 'CLIENT_CREDENTIALS']) {
      const reply = await send(server, '/api/v1/token', form({ grant_type: grant, client_id: agent.agentId, client_secret: agent.clientSecret }));
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ error: 'unsupported_grant_type', error_description: "Only 'client_credentials' grant type is supported." });
    }
  });

  it('answers an unknown client and a wrong secret identically', async () => {
    const unknown = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: '11111111-1111-4111-8111-111111111111', client_secret: agent.clientSecret }));
    const wrong = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: 'sk_live_wrong' }));
    const notUuid = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: 'robert', client_secret: 'x' }));
    for (const reply of [unknown, wrong, notUuid]) {
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ error: 'invalid_client', error_description: 'Client authentication failed. Invalid client_id or client_secret.' });
      expect(reply.headers.get('www-authenticate')).toBeNull();
    }
    expect(unknown.text).toBe(wrong.text);
  });

  it('adds WWW-Authenticate to a 401 when HTTP Basic was tried', async () => {
    const reply = await send(server, '/api/v1/token', {
      ...form({ grant_type: 'client_credentials' }),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(agent.agentId, 'sk_live_wrong') },
    });
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
    expect(reply.headers.get('www-authenticate')).toMatch(/^Basic realm="sentryagent"/);
  });

  it('answers missing client authentication with invalid_client', async () => {
    const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId }));
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
  });

  it('refuses scopes the agent does not hold and unknown scopes with invalid_scope', async () => {
    for (const scope of ['agents:write', 'admin:all', 'agents:read audit:read']) {
      const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret, scope }));
      expect(reply.status).toBe(400);
      expect(reply.body.error).toBe('invalid_scope');
    }
    const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret, scope: 'admin:all' }));
    expect(reply.body.error_description).toBe("Requested scope 'admin:all' is not available.");
  });

  it('refuses JSON bodies and repeated parameters', async () => {
    const asJson = await send(server, '/api/v1/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }),
    });
    expect(asJson.status).toBe(400);
    expect(asJson.body.error).toBe('invalid_request');
    const repeated = await send(server, '/api/v1/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&grant_type=client_credentials&client_id=${agent.agentId}&client_secret=${agent.clientSecret}`,
    });
    expect(repeated.status).toBe(400);
    expect(repeated.body.error).toBe('invalid_request');
  });

  it('answers a suspended agent with unauthorized_client and issues again after reactivation', async () => {
    const target = await createAgent(server, admin, { scopes: ['agents:read'] });
    await send(server, `/api/v1/agents/${target.agentId}/suspend`, bearer(admin, { method: 'POST' }));
    const refused = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: target.agentId, client_secret: target.clientSecret }));
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'Agent is currently suspended and cannot obtain tokens.' });
    await send(server, `/api/v1/agents/${target.agentId}/reactivate`, bearer(admin, { method: 'POST' }));
    await expect(getToken(server, target.agentId, target.clientSecret)).resolves.toEqual(expect.any(String));
  });

  it('answers a decommissioned agent like an unknown client', async () => {
    const target = await createAgent(server, admin);
    await send(server, `/api/v1/agents/${target.agentId}`, bearer(admin, { method: 'DELETE' }));
    const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: target.agentId, client_secret: target.clientSecret }));
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
  });

  it('accepts every live credential of an agent and none that is revoked', async () => {
    const target = await createAgent(server, admin);
    const second = await send(server, `/api/v1/agents/${target.agentId}/credentials`, bearer(admin, { method: 'POST' }));
    await expect(getToken(server, target.agentId, target.clientSecret)).resolves.toBeTruthy();
    await expect(getToken(server, target.agentId, second.body.clientSecret)).resolves.toBeTruthy();
    await send(server, `/api/v1/agents/${target.agentId}/credentials/${target.credentialId}`, bearer(admin, { method: 'DELETE' }));
    await expect(getToken(server, target.agentId, target.clientSecret)).rejects.toThrow(/401/);
    await expect(getToken(server, target.agentId, second.body.clientSecret)).resolves.toBeTruthy();
  });

  it('never answers with the secret, and the credential list never shows it', async () => {
    const listed = await send(server, `/api/v1/agents/${agent.agentId}/credentials`, bearer(admin));
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(agent.clientSecret);
    expect(listed.body.data[0]).toEqual({ credentialId: agent.credentialId, clientId: agent.agentId, orgId: agent.orgId, status: 'active', createdAt: expect.any(String), revokedAt: null });
  });

  it('keeps the bootstrap admin working with its configured credentials', async () => {
    await expect(getToken(server, ADMIN.clientId, ADMIN.clientSecret, 'audit:read')).resolves.toBeTruthy();
  });
});
