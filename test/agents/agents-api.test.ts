import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, getToken, json, send, platformOrgIdOf } from '../support/api.js';

let server: TestServer;
let admin: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server.stop());

describe('agents API', () => {
  it('creates an agent with 201 and the contract fields', async () => {
    const reply = await send(server, '/api/v1/agents', json('POST', { name: 'deployer', description: 'ships', scopes: ['agents:read'] }, admin));
    expect(reply.status).toBe(201);
    expect(reply.body).toEqual({
      agentId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      orgId: await platformOrgIdOf(server),
      name: 'deployer',
      description: 'ships',
      status: 'active',
      scopes: ['agents:read'],
      registeredRepository: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const fetched = await send(server, `/api/v1/agents/${reply.body.agentId}`, bearer(admin));
    expect(fetched.body).toEqual(reply.body);
  });

  it('validates bodies: unknown fields, unknown scopes, empty names, wrong types', async () => {
    for (const body of [{ name: 'x', admin: true }, { name: 'x', scopes: ['root'] }, { name: '  ' }, { name: 42 }, {}, { name: 'a\u0000b' }]) {
      const reply = await send(server, '/api/v1/agents', json('POST', body, admin));
      expect(reply.status).toBe(400);
      expect(reply.body.code).toBe('VALIDATION_ERROR');
      expect(typeof reply.body.message).toBe('string');
    }
  });

  it('paginates the list with a cursor and filters by status', async () => {
    for (let i = 0; i < 3; i += 1) await createAgent(server, admin, { name: `page-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const reply: Awaited<ReturnType<typeof send>> = await send(server, `/api/v1/agents?limit=2${cursor ? `&cursor=${cursor}` : ''}`, bearer(admin));
      expect(reply.status).toBe(200);
      expect(reply.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...reply.body.data.map((agent: { agentId: string }) => agent.agentId));
      cursor = reply.body.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(4);
    const bad = await send(server, '/api/v1/agents?cursor=garbage', bearer(admin));
    expect(bad.status).toBe(400);
    const limit = await send(server, '/api/v1/agents?limit=1000', bearer(admin));
    expect(limit.status).toBe(400);
  });

  it('updates name, description and scopes, and refuses an empty patch', async () => {
    const { agentId } = await createAgent(server, admin, { name: 'before' });
    const reply = await send(server, `/api/v1/agents/${agentId}`, json('PATCH', { name: 'after', scopes: ['audit:read'] }, admin));
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ name: 'after', scopes: ['audit:read'] });
    expect((await send(server, `/api/v1/agents/${agentId}`, json('PATCH', {}, admin))).status).toBe(400);
  });

  it('suspends, reactivates and decommissions; decommission is final', async () => {
    const { agentId } = await createAgent(server, admin);
    expect((await send(server, `/api/v1/agents/${agentId}/suspend`, bearer(admin, { method: 'POST' }))).body.status).toBe('suspended');
    expect((await send(server, `/api/v1/agents/${agentId}/reactivate`, bearer(admin, { method: 'POST' }))).body.status).toBe('active');
    expect((await send(server, `/api/v1/agents/${agentId}`, bearer(admin, { method: 'DELETE' }))).body.status).toBe('decommissioned');
    const reactivate = await send(server, `/api/v1/agents/${agentId}/reactivate`, bearer(admin, { method: 'POST' }));
    expect(reactivate.status).toBe(409);
    expect(reactivate.body.code).toBe('CONFLICT');
    expect((await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin, { method: 'POST' }))).status).toBe(409);
    const credentials = await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin));
    expect(credentials.body.data.every((credential: { status: string }) => credential.status === 'revoked')).toBe(true);
  });

  it('answers bad and unknown ids with 400 and 404', async () => {
    const bad = await send(server, '/api/v1/agents/1%27%20or%201=1--', bearer(admin));
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ code: 'VALIDATION_ERROR', message: 'agentId must be a UUID.' });
    const missing = await send(server, '/api/v1/agents/11111111-1111-4111-8111-111111111111', bearer(admin));
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ code: 'NOT_FOUND', message: 'Agent not found.' });
    const credential = await send(server, '/api/v1/agents/11111111-1111-4111-8111-111111111111/credentials/11111111-1111-4111-8111-111111111111', bearer(admin, { method: 'DELETE' }));
    expect(credential.status).toBe(404);
  });

  it('requires agents:read to read and agents:write to write', async () => {
    const reader = await createAgent(server, admin, { scopes: ['agents:read'] });
    const token = await getToken(server, reader.agentId, reader.clientSecret);
    expect((await send(server, '/api/v1/agents', bearer(token))).status).toBe(200);
    const write = await send(server, '/api/v1/agents', json('POST', { name: 'nope' }, token));
    expect(write.status).toBe(403);
    expect(write.body).toEqual({ code: 'INSUFFICIENT_SCOPE', message: "The 'agents:write' scope is required." });
    const anonymous = await send(server, '/api/v1/agents');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({ code: 'UNAUTHORIZED', message: 'A valid Bearer token is required to access this resource.' });
    // RFC 6750 §3.1: no error code when no token was sent, invalid_token when one was refused.
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="sentryagent"');
    const refused = await send(server, '/api/v1/agents', bearer(`${token.slice(0, -4)}AAAA`));
    expect(refused).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED', message: 'The access token is invalid, expired or revoked.' } });
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="sentryagent", error="invalid_token"');
  });

  it('shows a new credential secret once, prefixed sk_live_', async () => {
    const { agentId } = await createAgent(server, admin);
    const reply = await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin, { method: 'POST' }));
    expect(reply.status).toBe(201);
    expect(reply.body).toEqual({ credentialId: expect.any(String), clientId: agentId, clientSecret: expect.stringMatching(/^sk_live_[A-Za-z0-9_-]{43}$/), orgId: await platformOrgIdOf(server), createdAt: expect.any(String) });
    expect(reply.headers.get('cache-control')).toBe('no-store');
    const listed = await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin));
    expect(listed.text).not.toContain(reply.body.clientSecret);
  });
});
