/**
 * Failed client authentication on POST /api/v1/token is rate limited per client_id, in a
 * window of its own as large as RATE_LIMIT_PER_MINUTE: past it, failures are answered 429,
 * alike for an unknown client and a wrong secret, while the correct secret is still
 * granted (a client_id is public: anyone could otherwise lock an agent out).
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, createAgent, form, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { startOfNextMinute, testClock } from '../support/clock.js';

const LIMIT = 5;
const RATE_LIMITED = { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please retry after the rate limit window resets.' };
const INVALID_CLIENT = { error: 'invalid_client', error_description: 'Client authentication failed. Invalid client_id or client_secret.' };

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const withPost = (clientId: string, clientSecret: string): RequestInit => form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
const withBasic = (clientId: string, clientSecret: string): RequestInit => ({
  ...form({ grant_type: 'client_credentials' }),
  headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(clientId, clientSecret) },
});

/** What a client sees of an answer: status, body and the rate-limit headers. */
const seen = (reply: Reply) => ({
  status: reply.status,
  body: reply.body,
  limit: reply.headers.get('x-ratelimit-limit'),
  remaining: reply.headers.get('x-ratelimit-remaining'),
  reset: reply.headers.get('x-ratelimit-reset'),
  retryAfter: reply.headers.get('retry-after'),
});

describe('failed client authentication', () => {
  let server: TestServer;
  let peer: TestServer;
  let admin: string;
  // Both instances see one clock, set clear of a window boundary: a test's requests fall in one minute.
  const clock = testClock(startOfNextMinute());
  const token = (init: RequestInit, instance: TestServer = server) => send(instance, '/api/v1/token', init);
  const newAgent = async (): Promise<AgentWithSecret> => createAgent(server, admin, { scopes: ['agents:read'] });
  /** Each test starts in a fresh minute, so that windows of earlier tests do not count. */
  const nextMinute = () => clock.set(startOfNextMinute(clock.now()));

  beforeAll(async () => {
    const env = { RATE_LIMIT_PER_MINUTE: String(LIMIT) };
    server = await startTestServer({ env, clock });
    peer = await startTestServer({ env, shareWith: server, clock });
    admin = await adminToken(server);
  });
  afterAll(async () => {
    await peer.stop();
    await server.stop();
  });

  it('answers failures past RATE_LIMIT_PER_MINUTE with 429, alike for a wrong secret and an unknown client', async () => {
    const agent = await newAgent();
    nextMinute();
    const reset = String(Math.floor(clock.now() / 60_000) * 60 + 60);
    const unknownId = crypto.randomUUID();
    const wrongSecret: Reply[] = [];
    const unknownClient: Reply[] = [];
    for (let i = 0; i < LIMIT + 2; i += 1) {
      wrongSecret.push(await token(withPost(agent.agentId, `sk_live_wrong-${i}`)));
      unknownClient.push(await token(withPost(unknownId, `sk_live_wrong-${i}`)));
    }
    const expected = [
      ...Array.from({ length: LIMIT }, (_, i) => ({ status: 401, body: INVALID_CLIENT, limit: String(LIMIT), remaining: String(LIMIT - 1 - i), reset, retryAfter: null })),
      ...Array.from({ length: 2 }, () => ({ status: 429, body: RATE_LIMITED, limit: String(LIMIT), remaining: '0', reset, retryAfter: expect.stringMatching(/^([1-9]|[1-5][0-9]|60)$/) })),
    ];
    expect(wrongSecret.map(seen)).toEqual(expected);
    expect(unknownClient.map(seen)).toEqual(expected);
    expect(unknownClient.map((reply) => reply.text)).toEqual(wrongSecret.map((reply) => reply.text));
  });

  it('never refuses the correct secret because of failures, and leaves the client its own request limit', async () => {
    const agent = await newAgent();
    nextMinute();
    for (let i = 0; i <= LIMIT; i += 1) await token(withPost(agent.agentId, 'sk_live_wrong'));
    expect((await token(withPost(agent.agentId, 'sk_live_wrong'))).status).toBe(429);

    const granted = await token(withPost(agent.agentId, agent.clientSecret));
    expect(granted.status).toBe(200);
    // The grant counts in the client's own window, which the failures did not touch.
    expect(granted.headers.get('x-ratelimit-remaining')).toBe(String(LIMIT - 1));
    expect((await token(withBasic(agent.agentId, agent.clientSecret))).status).toBe(200);
    // And a failure after a success is still over the limit: a success does not reset it.
    expect((await token(withPost(agent.agentId, 'sk_live_wrong'))).status).toBe(429);
  });

  it('counts HTTP Basic, client_secret_post and a missing secret in one window per client_id, whatever the case of the id', async () => {
    const agent = await newAgent();
    nextMinute();
    const attempts = [
      () => token(withBasic(agent.agentId.toUpperCase(), 'sk_live_wrong')),
      () => token(withPost(agent.agentId, 'sk_live_wrong')),
      () => token(form({ grant_type: 'client_credentials', client_id: agent.agentId })),
      () => token(withBasic(agent.agentId, '')),
      () => token(withPost(agent.agentId.toUpperCase(), 'sk_live_wrong')),
    ];
    const replies = [];
    for (const attempt of attempts) replies.push(await attempt());
    expect(replies.map((reply) => [reply.status, reply.headers.get('x-ratelimit-remaining')])).toEqual([
      [401, '4'],
      [401, '3'],
      [401, '2'],
      [401, '1'],
      [401, '0'],
    ]);
    const refused = await token(withBasic(agent.agentId, 'sk_live_wrong'));
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual(RATE_LIMITED);
    // A 429 is no grant error: it carries no WWW-Authenticate challenge.
    expect(refused.headers.get('www-authenticate')).toBeNull();
    // Another client_id has a window of its own.
    expect((await token(withPost(crypto.randomUUID(), 'sk_live_wrong'))).status).toBe(401);
  });

  it('limits a client_id that is no UUID too, without storing what was sent', async () => {
    nextMinute();
    const pasted = 'sk_live_a-secret-pasted-into-client_id';
    const statuses = [];
    for (let i = 0; i <= LIMIT; i += 1) statuses.push((await token(withPost(pasted, 'x'))).status);
    expect(statuses).toEqual([...Array(LIMIT).fill(401), 429]);
    const keys = await server.deps.knex('rate_limit_windows').pluck('client_id');
    expect(keys.filter((key: string) => key.includes(pasted))).toEqual([]);
  });

  it('counts one window across instances on one database, exactly under concurrency', async () => {
    const agent = await newAgent();
    nextMinute();
    const replies = await Promise.all(
      Array.from({ length: 2 * LIMIT + 4 }, (_, i) => token(withPost(agent.agentId, 'sk_live_wrong'), i % 2 ? server : peer)),
    );
    expect(replies.filter((reply) => reply.status === 401)).toHaveLength(LIMIT);
    expect(replies.filter((reply) => reply.status === 429)).toHaveLength(LIMIT + 4);
    // The correct secret passes on either instance.
    expect((await token(withPost(agent.agentId, agent.clientSecret), peer)).status).toBe(200);
  });

  it('opens a new window when the minute turns', async () => {
    const agent = await newAgent();
    nextMinute();
    for (let i = 0; i < LIMIT; i += 1) await token(withPost(agent.agentId, 'sk_live_wrong'));
    const refused = await token(withPost(agent.agentId, 'sk_live_wrong'));
    expect(refused.status).toBe(429);
    clock.set(Number(refused.headers.get('x-ratelimit-reset')) * 1000);
    const next = await token(withPost(agent.agentId, 'sk_live_wrong'));
    expect(seen(next)).toMatchObject({ status: 401, remaining: String(LIMIT - 1) });
  });

  it('adds nothing to a grant: no failure window is written when the secret is right', async () => {
    const agent = await newAgent();
    nextMinute();
    for (let i = 0; i < 3; i += 1) expect((await token(withPost(agent.agentId, agent.clientSecret))).status).toBe(200);
    const windows = await server.deps.knex('rate_limit_windows').where('client_id', 'like', `%${agent.agentId}%`).pluck('client_id');
    expect(windows).toEqual([agent.agentId]);
  });
});

describe('failed client authentication with RATE_LIMIT_PER_MINUTE=0', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { RATE_LIMIT_PER_MINUTE: '0' } });
  });
  afterAll(() => server.stop());

  it('is not limited: every failure is 401, without rate-limit headers', async () => {
    const agent = await createAgent(server, await adminToken(server));
    for (let i = 0; i < 20; i += 1) {
      const reply = await send(server, '/api/v1/token', withPost(agent.agentId, 'sk_live_wrong'));
      expect(reply.status).toBe(401);
      expect(reply.headers.get('x-ratelimit-limit')).toBeNull();
    }
    expect(await server.deps.knex('rate_limit_windows').count({ n: '*' })).toEqual([{ n: 0 }]);
  });
});
