/**
 * What an exchange issues: scopes (the agent's, narrowed by the policy and the request),
 * provenance claims, lifetime and expires_at, and its share of the quota and rate limit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { bearer, form, json, send, type Reply, platformOrgIdOf } from '../support/api.js';
import { ADMIN } from '../support/test-server.js';
import { agentWithPolicy, awaitRoomInMinute, createPolicy, exchange, mintIdToken, startHarness, type Harness } from './exchange-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

const ALL = ['agents:read', 'agents:write', 'tokens:read'];

async function exchangeFor(agentId: string, extra: Record<string, unknown> = {}, server: { url: string } = h.server): Promise<Reply> {
  return exchange(server, await mintIdToken(h.github), agentId, extra);
}

describe('scopes', () => {
  it("grants all of the agent's scopes under a policy without scopes", async () => {
    const { agentId } = await agentWithPolicy(h, {}, ALL);
    expect((await exchangeFor(agentId)).body.scope).toBe('agents:read agents:write tokens:read');
  });

  it("grants only the policy's subset", async () => {
    const { agentId } = await agentWithPolicy(h, { scopes: ['tokens:read', 'agents:read'] }, ALL);
    expect((await exchangeFor(agentId)).body.scope).toBe('agents:read tokens:read');
  });

  it('grants a narrower requested scope, in JSON and in a form', async () => {
    const { agentId } = await agentWithPolicy(h, { scopes: ['agents:read', 'tokens:read'] }, ALL);
    expect((await exchangeFor(agentId, { scope: 'tokens:read' })).body.scope).toBe('tokens:read');
    const reply = await send(h.server, '/api/v1/oidc/token', form({ token: await mintIdToken(h.github), agentId, scope: 'agents:read' }));
    expect(reply.body.scope).toBe('agents:read');
  });

  it.each([
    ['a scope the agent holds but the policy does not grant', 'agents:write'],
    ['a scope the agent does not hold', 'audit:read'],
    ['an unknown scope', 'root'],
  ])('answers invalid_scope for %s', async (_, scope) => {
    const { agentId } = await agentWithPolicy(h, { scopes: ['agents:read', 'tokens:read'] }, ALL);
    const reply = await exchangeFor(agentId, { scope: `agents:read ${scope}` });
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 400,
      body: { error: 'invalid_scope', error_description: `Requested scope '${scope}' is not available.` },
    });
  });

  it('grants the union of the scopes of every matching policy', async () => {
    const { agentId } = await agentWithPolicy(h, { scopes: ['agents:read'] }, ALL);
    await createPolicy(h, { agentId, branch: 'main', scopes: ['tokens:read'] });
    expect((await exchangeFor(agentId)).body.scope).toBe('agents:read tokens:read');
  });

  it('never grants a policy scope the agent has since lost', async () => {
    const { agentId } = await agentWithPolicy(h, { scopes: ['agents:read', 'tokens:read'] }, ALL);
    expect((await send(h.server, `/api/v1/agents/${agentId}`, json('PATCH', { scopes: ['agents:read'] }, h.admin))).status).toBe(200);
    expect((await exchangeFor(agentId)).body.scope).toBe('agents:read');
  });
});

describe('the issued token', () => {
  it('answers like the token endpoint, with expires_at, never cached', async () => {
    const { agentId } = await agentWithPolicy(h);
    const reply = await exchangeFor(agentId);
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body)).toEqual(['access_token', 'token_type', 'expires_in', 'expires_at', 'scope']);
    expect(reply.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, expires_at: expect.any(String), scope: 'agents:read' });
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.headers.get('pragma')).toBe('no-cache');
  });

  it('carries the provenance of the run, visible through introspection', async () => {
    const { agentId } = await agentWithPolicy(h);
    const reply = await exchangeFor(agentId);
    const claims = decodeJwt(reply.body.access_token);
    const introspection = await send(h.server, '/api/v1/token/introspect', bearer(h.admin, form({ token: reply.body.access_token })));
    expect(introspection.body).toEqual({
      active: true,
      aud: 'http://idp.test',
      sub: agentId,
      client_id: agentId,
      org_id: await platformOrgIdOf(h.server),
      scope: 'agents:read',
      token_type: 'Bearer',
      iat: claims.iat,
      exp: claims.exp,
      iss: 'http://idp.test',
      jti: claims.jti,
      repository: 'octo-org/octo-repo',
      repository_id: '892312441',
      repository_owner_id: '119938721',
      ref: 'refs/heads/main',
      sha: '3f786850e387550fdab836ed7e6dc881de23001b',
      workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
      job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
      event_name: 'push',
      run_id: '9876543210',
      run_attempt: '1',
      actor: 'octocat',
    });
  });

  it('cannot be made to carry our own claims through the ID token', async () => {
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github, 'push-main', { sub: ADMIN.clientId, scope: 'agents:write audit:read', client_id: ADMIN.clientId });
    const claims = decodeJwt((await exchange(h.server, token, agentId)).body.access_token);
    expect(claims).toMatchObject({ sub: agentId, client_id: agentId, scope: 'agents:read', iss: 'http://idp.test' });
  });

  it('works as a Bearer token for the scopes it carries', async () => {
    const { agentId } = await agentWithPolicy(h, {}, ['agents:read']);
    const accessToken = (await exchangeFor(agentId)).body.access_token;
    expect((await send(h.server, `/api/v1/agents/${agentId}`, bearer(accessToken))).status).toBe(200);
    expect((await send(h.server, '/api/v1/agents', json('POST', { name: 'nope' }, accessToken))).status).toBe(403);
  });

  it('lives TOKEN_TTL_SECONDS, and expires_at is the ISO 8601 form of its exp', async () => {
    const peer = await h.startPeer({ TOKEN_TTL_SECONDS: '120' });
    const { agentId } = await agentWithPolicy(h);
    const before = Math.floor(Date.now() / 1000);
    const reply = await exchangeFor(agentId, {}, peer);
    const claims = decodeJwt(reply.body.access_token);
    expect(reply.body.expires_in).toBe(120);
    expect(reply.body.expires_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    expect(Date.parse(reply.body.expires_at) / 1000).toBe(claims.exp);
    expect((claims.exp as number) - (claims.iat as number)).toBe(120);
    expect(claims.iat).toBeGreaterThanOrEqual(before);
  });
});

describe('limits', () => {
  it('counts exchanges toward MONTHLY_TOKEN_LIMIT', async () => {
    const peer = await h.startPeer({ MONTHLY_TOKEN_LIMIT: '2' });
    const { agentId } = await agentWithPolicy(h);
    expect((await exchangeFor(agentId, {}, peer)).status).toBe(200);
    expect((await exchangeFor(agentId, {}, peer)).status).toBe(200);
    const refused = await exchangeFor(agentId, {}, peer);
    expect({ status: refused.status, body: refused.body }).toEqual({
      status: 403,
      body: { error: 'unauthorized_client', error_description: 'Free tier monthly token limit of 2 requests has been reached.' },
    });
  });

  it('counts exchanges toward RATE_LIMIT_PER_MINUTE, together with client-credentials grants of the agent', async () => {
    const peer = await h.startPeer({ RATE_LIMIT_PER_MINUTE: '3' });
    const { agentId } = await agentWithPolicy(h);
    const credential = await send(h.server, `/api/v1/agents/${agentId}/credentials`, bearer(h.admin, { method: 'POST' }));
    await awaitRoomInMinute();
    const first = await exchangeFor(agentId, {}, peer);
    expect(first.status).toBe(200);
    expect([first.headers.get('x-ratelimit-limit'), first.headers.get('x-ratelimit-remaining')]).toEqual(['3', '2']);
    expect((await exchangeFor(agentId, {}, peer)).headers.get('x-ratelimit-remaining')).toBe('1');
    const grant = await send(peer, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: credential.body.clientSecret }));
    expect(grant.headers.get('x-ratelimit-remaining')).toBe('0');
    const limited = await exchangeFor(agentId, {}, peer);
    expect({ status: limited.status, body: limited.body }).toEqual({
      status: 429,
      body: { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please retry after the rate limit window resets.' },
    });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  }, 60_000); // awaitRoomInMinute() alone may sleep 16 s
});
