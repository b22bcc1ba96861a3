import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, ADMIN, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, getToken, json, send } from '../support/api.js';
import { isRealPostgres } from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe('operations endpoints', () => {
  it('answers /healthz and /readyz', async () => {
    expect(await send(server, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await send(server, '/readyz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('serves Prometheus metrics with route patterns, not ids', async () => {
    const admin = await adminToken(server);
    await send(server, '/api/v1/agents/11111111-1111-4111-8111-111111111111', bearer(admin));
    const reply = await send(server, '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(reply.text).toMatch(/http_requests_total\{method="GET",route="\/api\/v1\/agents\/:agentId",status="404"\} 1/);
    expect(reply.text).toMatch(/sentryagent_tokens_issued_total\{grant_type="client_credentials"\} \d+/);
    expect(reply.text).not.toContain('11111111-1111');
  });

  it('answers a hot endpoint alike on its exact path and through the routers, under one metrics label', async () => {
    const agent = await createAgent(server, await adminToken(server), { scopes: ['agents:read'] });
    const grant = form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret });
    const exact = await send(server, '/api/v1/token', grant);
    const slashed = await send(server, '/api/v1/token/', grant);
    expect([exact.status, slashed.status]).toEqual([200, 200]);
    expect(Object.keys(slashed.body).sort()).toEqual(Object.keys(exact.body).sort());
    expect(exact.headers.get('x-content-type-options')).toBe('nosniff');
    expect(exact.headers.get('x-request-id')).toBeTruthy();
    const wrongMethod = await send(server, '/api/v1/token', { method: 'GET' });
    expect(wrongMethod.status).toBe(405);
    const metrics = (await send(server, '/metrics')).text;
    const served = Number(/http_requests_total\{method="POST",route="\/api\/v1\/token",status="200"\} (\d+)/.exec(metrics)?.[1]);
    expect(served).toBeGreaterThanOrEqual(2);
    expect(metrics).not.toContain('route="/api/v1/token/"');
  });

  it('publishes RFC 8414 metadata whose URLs start with PUBLIC_URL', async () => {
    const reply = await send(server, '/.well-known/oauth-authorization-server');
    expect(reply.body).toMatchObject({
      issuer: 'http://idp.test',
      token_endpoint: 'http://idp.test/api/v1/token',
      jwks_uri: 'http://idp.test/.well-known/jwks.json',
      introspection_endpoint: 'http://idp.test/api/v1/token/introspect',
      revocation_endpoint: 'http://idp.test/api/v1/token/revoke',
      grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });

  it('publishes only public key material in the JWKS', async () => {
    const reply = await send(server, '/.well-known/jwks.json');
    expect(reply.body.keys.length).toBeGreaterThan(0);
    for (const key of reply.body.keys) {
      expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) });
      for (const privateMember of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(privateMember);
    }
  });

  it('answers unknown paths and methods in the error shape', async () => {
    expect(await send(server, '/nowhere')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    const wrongMethod = await send(server, '/api/v1/agents', { method: 'PUT' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body.code).toBe('VALIDATION_ERROR');
  });

  it('logs requests as JSON lines without secrets or tokens', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin);
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: 'sk_live_wrong-secret-value' }));
    await send(server, '/api/v1/agents', json('POST', { name: 'x', client_secret: agent.clientSecret }, token));
    const logs = server.logs.join('');
    for (const secret of [agent.clientSecret, token, admin, ADMIN.clientSecret, 'sk_live_wrong-secret-value']) {
      expect(logs).not.toContain(secret);
    }
    for (const line of server.logs) expect(() => JSON.parse(line)).not.toThrow();
  });
});

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // the embedded database cannot go away
describeWithPostgres('database outage', () => {
  it('answers 503 in each error shape while the database is down and recovers without a restart', async () => {
    const target = new URL(process.env.DATABASE_URL as string);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const direct = await startTestServer();
    const viaProxy = new URL(direct.testDatabase.url as string);
    viaProxy.port = String(proxy.port);
    const instance = await startTestServer({ env: { DATABASE_URL: viaProxy.toString() }, shareWith: direct });
    try {
      const admin = await adminToken(instance);
      proxy.cut();
      const api = await send(instance, '/api/v1/agents', bearer(admin));
      expect(api.status).toBe(503);
      expect(api.body).toEqual({ code: 'SERVICE_UNAVAILABLE', message: expect.any(String) });
      const tokenReply = await send(instance, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: ADMIN.clientId, client_secret: ADMIN.clientSecret }));
      expect(tokenReply.status).toBe(503);
      expect(tokenReply.body).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'The service is temporarily unavailable. Please retry shortly.' });
      expect((await send(instance, '/readyz')).status).toBe(503);
      expect((await send(instance, '/healthz')).status).toBe(200);
      proxy.restore();
      let recovered = await send(instance, '/readyz');
      for (let i = 0; i < 20 && recovered.status !== 200; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        recovered = await send(instance, '/readyz');
      }
      expect(recovered.status).toBe(200);
      expect((await send(instance, '/api/v1/agents', bearer(admin))).status).toBe(200);
      const logs = instance.logs.join('');
      expect(logs).not.toContain(ADMIN.clientSecret);
    } finally {
      await instance.stop();
      await direct.stop();
      await proxy.close();
    }
  });
});
