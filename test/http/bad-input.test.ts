import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, send, type Reply } from '../support/api.js';
import { rawRequest } from '../support/raw-http.js';

let server: TestServer;
let admin: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server.stop());

function expectApiShape(reply: Reply, status: number): void {
  expect(reply.status).toBe(status);
  expect(reply.body).toEqual({ code: expect.any(String), message: expect.any(String), ...(reply.body.details ? { details: expect.anything() } : {}) });
  expect(reply.text).not.toMatch(/at \w+ \(|node_modules|select |insert |postgres/i);
}

function expectOAuthShape(reply: Reply, status: number, error = 'invalid_request'): void {
  expect(reply.status).toBe(status);
  expect(reply.body).toEqual({ error, error_description: expect.any(String) });
  expect(reply.text).not.toMatch(/at \w+ \(|node_modules|select |insert |postgres/i);
}

const post = (path: string, headers: Record<string, string>, body: string | Buffer) =>
  send(server, path, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, ...headers }, body });

describe('hostile input gets a documented 4xx', () => {
  it('malformed JSON, non-object JSON, and deep nesting', async () => {
    for (const body of ['{"name":', '[]', '"x"', 'null', '[' .repeat(5000) + ']'.repeat(5000), '{"name":"' + 'a'.repeat(200) + '"}']) {
      expectApiShape(await post('/api/v1/agents', { 'Content-Type': 'application/json' }, body), 400);
    }
  });

  it('wrong, missing and exotic content types and charsets', async () => {
    expectApiShape(await post('/api/v1/agents', { 'Content-Type': 'text/plain' }, '{"name":"x"}'), 400);
    expectApiShape(await post('/api/v1/agents', {}, '{"name":"x"}'), 400);
    expectApiShape(await post('/api/v1/agents', { 'Content-Type': 'application/json; charset=utf-16' }, '{"name":"x"}'), 400);
    expectOAuthShape(await post('/api/v1/token', { 'Content-Type': 'multipart/form-data; boundary=x' }, '--x--'), 400);
  });

  it('oversized bodies answer 413 before being read whole', async () => {
    expectApiShape(await post('/api/v1/agents', { 'Content-Type': 'application/json' }, JSON.stringify({ name: 'x'.repeat(100_000) })), 413);
    expectOAuthShape(await post('/api/v1/token', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'grant_type=' + 'x'.repeat(100_000)), 413);
  });

  it('invalid UTF-8 and compressed bodies', async () => {
    expectApiShape(await post('/api/v1/agents', { 'Content-Type': 'application/json' }, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400);
    expectOAuthShape(await post('/api/v1/token', { 'Content-Type': 'application/x-www-form-urlencoded' }, Buffer.from([0x67, 0x3d, 0xc3, 0x28])), 400);
    expectApiShape(await post('/api/v1/agents', { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, '{}'), 400);
  });

  it('injection attempts in ids, queries and forms are plain data', async () => {
    expectApiShape(await send(server, "/api/v1/agents/'%3B%20drop%20table%20agents%3B--", { headers: { Authorization: `Bearer ${admin}` } }), 400);
    expectApiShape(await send(server, '/api/v1/audit?agentId=1%27%20or%20%271%27=%271', { headers: { Authorization: `Bearer ${admin}` } }), 400);
    expectApiShape(await send(server, '/api/v1/audit?type=a&type=b', { headers: { Authorization: `Bearer ${admin}` } }), 400);
    const token = await send(server, '/api/v1/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: "grant_type=client_credentials&client_id=x'%20or%201=1--&client_secret=x",
    });
    expectOAuthShape(token, 401, 'invalid_client');
    expect(await server.deps.knex.schema.hasTable('agents')).toBe(true);
  });

  it('prototype keys and unknown fields are refused, not merged', async () => {
    const reply = await post('/api/v1/agents', { 'Content-Type': 'application/json' }, '{"name":"x","__proto__":{"scopes":["agents:write"]}}');
    expectApiShape(reply, 400);
  });

  it('malformed Authorization headers answer 401', async () => {
    for (const header of ['Bearer', 'Bearer a b', 'Basic abc', 'bearer ' + 'x'.repeat(9000), 'Bearer ey.ey.ey']) {
      expectApiShape(await send(server, '/api/v1/agents', { headers: { Authorization: header } }), 401);
    }
    expectOAuthShape(
      await send(server, '/api/v1/token', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: 'Basic !!!' }, body: 'grant_type=client_credentials' }),
      401,
      'invalid_client',
    );
  });
});

describe('requests the HTTP parser refuses', () => {
  it.each([
    ['a header line without a colon', { method: 'GET', target: '/healthz', headers: [['Bad Header', '']] as [string, string][] }, 400],
    ['an unknown method', { method: 'FOO', target: '/healthz' }, 400],
    ['a NUL in the request target', { method: 'GET', target: '/health\u0000z' }, 400],
    ['headers past the size limit', { method: 'GET', target: '/healthz', headers: [['X-Padding', 'a'.repeat(20_000)]] as [string, string][] }, 431],
  ])('answers %s in the API error shape, then closes', async (_, request, status) => {
    const reply = await rawRequest(server.url, request);
    expect(reply.status).toBe(status);
    expect(reply.headers['content-type']).toEqual(['application/json; charset=utf-8']);
    expect(reply.headers.connection).toEqual(['close']);
    expect(reply.json).toEqual({ code: 'VALIDATION_ERROR', message: expect.any(String) });
  });
});
