import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, getToken, send, type AgentWithSecret, platformOrgIdOf } from '../support/api.js';
import { testClock } from '../support/clock.js';

// The server's clock: a test moves it past a token's expiry instead of waiting for it.
const clock = testClock();
let server: TestServer;
let admin: string;
let inspector: string;
let worker: AgentWithSecret;

const introspect = (callerToken: string, token: string) => send(server, '/api/v1/token/introspect', bearer(callerToken, form({ token })));
const revoke = (callerToken: string, token: string) => send(server, '/api/v1/token/revoke', bearer(callerToken, form({ token })));

beforeAll(async () => {
  server = await startTestServer({ env: { TOKEN_TTL_SECONDS: '600' }, clock });
  admin = await adminToken(server);
  const inspectorAgent = await createAgent(server, admin, { name: 'inspector', scopes: ['tokens:read'] });
  inspector = await getToken(server, inspectorAgent.agentId, inspectorAgent.clientSecret);
  worker = await createAgent(server, admin, { name: 'worker', scopes: ['agents:read'] });
});
afterAll(() => server.stop());

describe('POST /api/v1/token/introspect (RFC 7662)', () => {
  it('describes an active token', async () => {
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const reply = await introspect(inspector, token);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      active: true,
      aud: 'http://idp.test',
      sub: worker.agentId,
      client_id: worker.agentId,
      org_id: worker.orgId,
      scope: 'agents:read',
      token_type: 'Bearer',
      iat: expect.any(Number),
      exp: expect.any(Number),
      iss: 'http://idp.test',
      jti: expect.any(String),
    });
    expect(reply.headers.get('cache-control')).toBe('no-store');
  });

  it('answers {active:false} and nothing more for garbage, foreign and tampered tokens', async () => {
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const [header, payload, signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'agents:write' })).toString('base64url');
    const noneAlg = `${Buffer.from('{"alg":"none","kid":"x"}').toString('base64url')}.${payload}.`;
    for (const candidate of ['garbage', `${header}.${forged}.${signature}`, noneAlg, `${header}.${payload}.${signature.slice(0, -4)}AAAA`]) {
      const reply = await introspect(inspector, candidate);
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ active: false });
    }
  });

  it('requires a Bearer token with tokens:read', async () => {
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const anonymous = await send(server, '/api/v1/token/introspect', form({ token }));
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({ code: 'UNAUTHORIZED', message: 'A valid Bearer token is required to access this resource.' });
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const withoutScope = await introspect(token, token);
    expect(withoutScope.status).toBe(403);
    expect(withoutScope.body).toEqual({ code: 'INSUFFICIENT_SCOPE', message: "The 'tokens:read' scope is required." });
    expect(withoutScope.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
  });

  it('answers a missing token parameter with VALIDATION_ERROR (seed 002)', async () => {
    const reply = await send(server, '/api/v1/token/introspect', bearer(inspector, form({})));
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ code: 'VALIDATION_ERROR', message: "The 'token' parameter is required." });
  });
});

describe('POST /api/v1/token/revoke (RFC 7009)', () => {
  it('lets an agent revoke its own token, after which it is inactive everywhere', async () => {
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const reply = await revoke(token, token);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({});
    expect((await introspect(inspector, token)).body).toEqual({ active: false });
    const asBearer = await send(server, `/api/v1/agents/${worker.agentId}`, bearer(token));
    expect(asBearer.status).toBe(401);
    expect(asBearer.body.code).toBe('UNAUTHORIZED');
  });

  it('answers 200 for unknown, garbage and already revoked tokens', async () => {
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const caller = await getToken(server, worker.agentId, worker.clientSecret);
    await revoke(caller, token);
    for (const candidate of [token, 'not-a-token', 'a.b.c']) {
      const reply = await revoke(caller, candidate);
      expect(reply.status).toBe(200);
    }
  });

  it("refuses to revoke another agent's token without agents:write, and allows it with", async () => {
    const other = await createAgent(server, admin);
    const othersToken = await getToken(server, other.agentId, other.clientSecret);
    const workerToken = await getToken(server, worker.agentId, worker.clientSecret);
    const refused = await revoke(workerToken, othersToken);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ code: 'FORBIDDEN', message: 'You do not have permission to revoke this token.' });
    expect((await introspect(inspector, othersToken)).body.active).toBe(true);
    expect((await revoke(admin, othersToken)).status).toBe(200);
    expect((await introspect(inspector, othersToken)).body.active).toBe(false);
  });

  it('requires a Bearer token', async () => {
    const reply = await send(server, '/api/v1/token/revoke', form({ token: 'x' }));
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ code: 'UNAUTHORIZED', message: 'A valid Bearer token is required to access this resource.' });
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="sentryagent"');
  });
});

describe('tokens of suspended, decommissioned and rotated-out credentials', () => {
  it('makes live tokens inactive on suspension and keeps them so after reactivation', async () => {
    const target = await createAgent(server, admin, { scopes: ['agents:read'] });
    const token = await getToken(server, target.agentId, target.clientSecret);
    await send(server, `/api/v1/agents/${target.agentId}/suspend`, bearer(admin, { method: 'POST' }));
    expect((await introspect(inspector, token)).body).toEqual({ active: false });
    expect((await send(server, '/api/v1/agents', bearer(token))).status).toBe(401);
    await send(server, `/api/v1/agents/${target.agentId}/reactivate`, bearer(admin, { method: 'POST' }));
    expect((await introspect(inspector, token)).body).toEqual({ active: false });
    const fresh = await getToken(server, target.agentId, target.clientSecret);
    expect((await introspect(inspector, fresh)).body.active).toBe(true);
  });

  it('kills every token on decommission', async () => {
    const target = await createAgent(server, admin, { scopes: ['agents:read'] });
    const token = await getToken(server, target.agentId, target.clientSecret);
    await send(server, `/api/v1/agents/${target.agentId}`, bearer(admin, { method: 'DELETE' }));
    expect((await introspect(inspector, token)).body).toEqual({ active: false });
  });

  it('revokes the tokens a credential obtained when the credential is revoked', async () => {
    const target = await createAgent(server, admin, { scopes: ['agents:read'] });
    const token = await getToken(server, target.agentId, target.clientSecret);
    await send(server, `/api/v1/agents/${target.agentId}/credentials/${target.credentialId}`, bearer(admin, { method: 'DELETE' }));
    expect((await introspect(inspector, token)).body).toEqual({ active: false });
  });
});

describe("expiry, by the server's clock", () => {
  it('makes a token inactive the second its exp passes, for introspection and as a Bearer token', async () => {
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const { exp } = (await introspect(inspector, token)).body;
    clock.set(exp * 1000 - 1_000);
    const lateAdmin = await adminToken(server); // issued at the new instant: it outlives `token`
    expect((await introspect(lateAdmin, token)).body.active).toBe(true);
    expect((await send(server, '/api/v1/agents', bearer(token))).status).toBe(200);
    clock.set(exp * 1000);
    expect((await introspect(lateAdmin, token)).body).toEqual({ active: false });
    expect((await send(server, '/api/v1/agents', bearer(token))).status).toBe(401);
  });
});
