import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, send } from '../support/api.js';
import { startOfNextMinute, testClock } from '../support/clock.js';

describe('rate limit per client_id', () => {
  let server: TestServer;
  let peer: TestServer;
  // Both instances see one clock, set clear of a window boundary: every request falls in one minute.
  const clock = testClock(startOfNextMinute());
  beforeAll(async () => {
    server = await startTestServer({ env: { RATE_LIMIT_PER_MINUTE: '20' }, clock });
    peer = await startTestServer({ env: { RATE_LIMIT_PER_MINUTE: '20' }, shareWith: server, clock });
  });
  afterAll(async () => {
    await peer.stop();
    await server.stop();
  });

  it('counts exactly across two instances under concurrency, then answers 429 with Retry-After', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin);
    const request = (instance: TestServer) =>
      send(instance, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => request(i % 2 ? server : peer)));
    const granted = replies.filter((reply) => reply.status === 200);
    const limited = replies.filter((reply) => reply.status === 429);
    expect(granted).toHaveLength(20);
    expect(limited).toHaveLength(10);
    const remaining = granted.map((reply) => Number(reply.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const refusal = limited[0];
    expect(refusal.body).toEqual({ code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please retry after the rate limit window resets.' });
    expect(refusal.headers.get('x-ratelimit-limit')).toBe('20');
    expect(refusal.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(refusal.headers.get('x-ratelimit-reset'));
    expect(reset % 60).toBe(0);
    expect(Number(refusal.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refusal.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  it('opens a new window when the minute turns, without waiting for it', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin);
    const request = () => send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
    clock.set(startOfNextMinute(clock.now()));
    for (let i = 0; i < 20; i += 1) expect((await request()).status).toBe(200);
    const limited = await request();
    expect(limited.status).toBe(429);
    const reset = Number(limited.headers.get('x-ratelimit-reset'));
    expect(reset).toBe(Math.floor(clock.now() / 60_000) * 60 + 60);
    clock.set(reset * 1000);
    const next = await request();
    expect(next.status).toBe(200);
    expect(next.headers.get('x-ratelimit-remaining')).toBe('19');
    expect(next.headers.get('x-ratelimit-reset')).toBe(String(reset + 60));
  });

  it('signs each grant once, and nothing for a client refused earlier in the window until the minute turns', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin);
    const request = () => send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
    clock.set(startOfNextMinute(clock.now()));
    const signatures = jest.spyOn(server.deps.keys, 'signWithKid');
    try {
      for (let i = 0; i < 20; i += 1) expect((await request()).status).toBe(200);
      expect(signatures).toHaveBeenCalledTimes(20);
      // The first refusal was signed while the database decided, and its token dropped.
      expect((await request()).status).toBe(429);
      expect(signatures).toHaveBeenCalledTimes(21);
      for (let i = 0; i < 5; i += 1) expect((await request()).status).toBe(429);
      expect(signatures).toHaveBeenCalledTimes(21);
      clock.set(startOfNextMinute(clock.now()));
      const next = await request();
      expect(next.status).toBe(200);
      expect(signatures).toHaveBeenCalledTimes(22);
      expect((await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: next.body.access_token })))).body).toMatchObject({ active: true });
    } finally {
      signatures.mockRestore();
    }
  });
});

describe('monthly quota per agent', () => {
  let server: TestServer;
  let peer: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { MONTHLY_TOKEN_LIMIT: '12' } });
    peer = await startTestServer({ env: { MONTHLY_TOKEN_LIMIT: '12' }, shareWith: server });
  });
  afterAll(async () => {
    await peer.stop();
    await server.stop();
  });

  it('grants exactly the limit across two instances under concurrency, then 403 unauthorized_client', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin);
    const request = (instance: TestServer) =>
      send(instance, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
    const replies = await Promise.all(Array.from({ length: 25 }, (_, i) => request(i % 2 ? server : peer)));
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(12);
    const refused = replies.filter((reply) => reply.status === 403);
    expect(refused).toHaveLength(13);
    expect(refused[0].body).toEqual({
      error: 'unauthorized_client',
      error_description: 'Free tier monthly token limit of 12 requests has been reached.',
    });
    const issued = await send(server, `/api/v1/audit?agentId=${agent.agentId}&type=token.issued&limit=100`, bearer(admin));
    expect(issued.body.data).toHaveLength(12);
  });

  it('formats the default limit as the seed does', async () => {
    const fresh = await startTestServer({ env: { MONTHLY_TOKEN_LIMIT: '10000' } });
    try {
      const admin = await adminToken(fresh);
      const agent = await createAgent(fresh, admin);
      await fresh.deps.knex('token_quotas').insert({ agent_id: agent.agentId, month: new Date().toISOString().slice(0, 7), count: 10_000 });
      const reply = await send(fresh, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
      expect(reply.status).toBe(403);
      expect(reply.body.error_description).toBe('Free tier monthly token limit of 10,000 requests has been reached.');
    } finally {
      await fresh.stop();
    }
  });
});
