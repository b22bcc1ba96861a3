/**
 * Two instances on one PostgreSQL database under concurrent load: counters are exact
 * across them, a change of security state on one holds on the other at the next request,
 * they sign and verify with one key set, the audit chain stays intact, and a GitHub ID
 * token is spent exactly once. (test/http/limits.test.ts covers the client-credentials
 * burst alone; this adds the GitHub exchange, the other token endpoints and a mixed load.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { isRealPostgres } from '../support/database.js';
import { startOfNextMinute, testClock, type TestClock } from '../support/clock.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, getToken, json, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { claimsOfJwt, mapLimit, readWholeAuditLog, sleep, startLoad } from '../support/load.js';

const AUDIENCE = 'https://idp.test/github';
const REPOSITORY = 'octo-org/octo-repo';
let github: FakeGitHubIssuer;

beforeAll(async () => {
  github = await startFakeGitHubIssuer({ audience: AUDIENCE });
});
afterAll(() => github.close());

async function startPair(env: Record<string, string> = {}, clock?: TestClock): Promise<[TestServer, TestServer]> {
  const fullEnv = { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE, ...env };
  const first = await startTestServer({ env: fullEnv, clock });
  const second = await startTestServer({ env: fullEnv, shareWith: first, clock });
  return [first, second];
}

async function trustRepository(server: TestServer, admin: string, agentId: string): Promise<void> {
  const reply = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, agentId }, admin));
  if (reply.status !== 201) throw new Error(`trust policy: ${reply.status} ${reply.text}`);
}

const mintIdToken = () => github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE });
const exchange = (server: TestServer, token: string, agentId: string) => send(server, '/api/v1/oidc/token', json('POST', { token, agentId }));
const clientCredentials = (server: TestServer, agent: AgentWithSecret) =>
  send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));

function countBy(replies: readonly Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const reply of replies) counts[reply.status] = (counts[reply.status] ?? 0) + 1;
  return counts;
}

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // several pools on one database need a real server; embedded PGlite is one in-process connection

describeWithPostgres('exact counters across two instances', () => {
  it('grants exactly MONTHLY_TOKEN_LIMIT when client-credentials grants and GitHub exchanges race on both instances', async () => {
    const [first, second] = await startPair({ MONTHLY_TOKEN_LIMIT: '15' });
    try {
      const admin = await adminToken(first);
      const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
      await trustRepository(first, admin, agent.agentId);
      const idTokens = await Promise.all(Array.from({ length: 20 }, mintIdToken));
      const requests = [
        ...idTokens.map((token, i) => () => exchange(i % 2 ? first : second, token, agent.agentId)),
        ...idTokens.map((_, i) => () => clientCredentials(i % 2 ? second : first, agent)),
      ];
      const replies = await Promise.all(requests.map((request) => request()));

      expect(countBy(replies)).toEqual({ 200: 15, 403: 25 });
      for (const refusal of replies.filter((reply) => reply.status === 403)) {
        expect(refusal.body).toEqual({ error: 'unauthorized_client', error_description: 'Free tier monthly token limit of 15 requests has been reached.' });
      }
      const grantedJtis = replies.filter((reply) => reply.status === 200).map((reply) => claimsOfJwt(reply.body.access_token).jti);
      expect(new Set(grantedJtis).size).toBe(15);
      // The bookkeeping agrees with the answers: one quota count, one row and one audit event per grant.
      const knex = first.deps.knex;
      const [quota] = await knex('token_quotas').where({ agent_id: agent.agentId });
      expect(quota.count).toBe(15);
      const rows = await knex('access_tokens').where({ agent_id: agent.agentId }).pluck('jti');
      expect(rows.sort()).toEqual([...grantedJtis].sort());
      const audited = (await readWholeAuditLog(first, admin, `&agentId=${agent.agentId}`)).filter((event) =>
        ['token.issued', 'oidc.exchange.granted'].includes(event.type),
      );
      expect(audited.map((event) => event.data.jti).sort()).toEqual([...grantedJtis].sort());
    } finally {
      await second.stop();
      await first.stop();
    }
  });

  it('counts every token endpoint of one client in one rate-limit window across both instances', async () => {
    // One clock for both, one second into a minute: every request falls in one window.
    const [first, second] = await startPair({ RATE_LIMIT_PER_MINUTE: '20' }, testClock(startOfNextMinute()));
    try {
      const admin = await adminToken(first);
      const agent = await createAgent(first, admin, { scopes: ['tokens:read'] });
      await trustRepository(first, admin, agent.agentId);
      const idTokens = await Promise.all(Array.from({ length: 10 }, mintIdToken));
      const own = await getToken(second, agent.agentId, agent.clientSecret); // the first request of the window
      const instance = (i: number) => (i % 2 ? first : second);
      const requests = [
        ...idTokens.map((token, i) => () => exchange(instance(i), token, agent.agentId)),
        ...idTokens.map((_, i) => () => clientCredentials(instance(i + 1), agent)),
        ...idTokens.map((_, i) => () => send(instance(i), '/api/v1/token/introspect', bearer(own, form({ token: own })))),
        ...idTokens.map((_, i) => () => send(instance(i + 1), '/api/v1/token/revoke', bearer(own, form({ token: `not-a-token-${i}` })))),
      ];
      const replies = await Promise.all(requests.map((request) => request()));

      const allowed = replies.filter((reply) => reply.status !== 429);
      expect(allowed).toHaveLength(19);
      expect(allowed.every((reply) => reply.status === 200)).toBe(true);
      const remaining = allowed.map((reply) => Number(reply.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b);
      expect(remaining).toEqual(Array.from({ length: 19 }, (_, i) => i));
      for (const refusal of replies.filter((reply) => reply.status === 429)) {
        expect(refusal.body).toEqual({ code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please retry after the rate limit window resets.' });
        expect(refusal.headers.get('x-ratelimit-remaining')).toBe('0');
        expect(Number(refusal.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      // The window is the server's, not this test's clock after the burst: X-RateLimit-Reset is
      // the end of the counted window, (window_start + 1) * 60 (server/src/http/rate-limit.ts),
      // and every answer of the burst, allowed or refused, was counted in that same window.
      const resets = new Set(replies.map((reply) => reply.headers.get('x-ratelimit-reset')));
      expect(resets.size).toBe(1);
      const windowStart = Number(allowed[0].headers.get('x-ratelimit-reset')) / 60 - 1;
      const [window] = await first.deps.knex('rate_limit_windows').where({ client_id: agent.agentId, window_start: windowStart });
      expect(window.count).toBe(41);
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});

describeWithPostgres('security state shared by two instances', () => {
  let first: TestServer;
  let second: TestServer;
  let admin: string;
  beforeAll(async () => {
    [first, second] = await startPair();
    admin = await adminToken(first);
  });
  afterAll(async () => {
    await second.stop();
    await first.stop();
  });

  /**
   * Keeps `workers` clients calling `probe` on the second instance, applies `change` on the
   * first, and returns what the probes saw before it and after its answer arrived.
   */
  async function probeAcross(change: () => Promise<Reply>, probe: () => Promise<Reply>) {
    const maxRequests = 300;
    const load = startLoad(4, probe, maxRequests);
    while (load.samples.length < 20) await sleep(10);
    // A probe that finished before the change was sent was answered before it; one that
    // finished while the change was in flight may legitimately have seen either state.
    const changeSentAt = performance.now();
    const changed = await change();
    const changedAt = performance.now();
    const wanted = Math.min(load.samples.length + 30, maxRequests);
    for (let waited = 0; load.samples.length < wanted && waited < 10_000; waited += 10) await sleep(10);
    const samples = await load.stop();
    expect(changed.status).toBe(200);
    return {
      before: samples.filter((sample) => sample.finishedAt < changeSentAt).map((sample) => sample.value.status),
      after: samples.filter((sample) => sample.startedAt > changedAt).map((sample) => sample.value),
    };
  }

  it('honours a revocation on the other instance at the very next request', async () => {
    const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
    const token = await getToken(first, agent.agentId, agent.clientSecret);
    const { before, after } = await probeAcross(
      () => send(first, '/api/v1/token/revoke', bearer(token, form({ token }))),
      () => send(second, `/api/v1/agents/${agent.agentId}`, bearer(token)),
    );
    expect(new Set(before)).toEqual(new Set([200]));
    expect(after.length).toBeGreaterThanOrEqual(30);
    for (const reply of after) expect(reply.body).toEqual({ code: 'UNAUTHORIZED', message: 'The access token is invalid, expired or revoked.' });
  });

  it('honours a suspension at once: live tokens die and no instance issues new ones', async () => {
    const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
    await trustRepository(first, admin, agent.agentId);
    const token = await getToken(second, agent.agentId, agent.clientSecret);
    const { before, after } = await probeAcross(
      () => send(first, `/api/v1/agents/${agent.agentId}/suspend`, bearer(admin, { method: 'POST' })),
      () => send(second, '/api/v1/agents', bearer(token)),
    );
    expect(new Set(before)).toEqual(new Set([200]));
    expect(new Set(after.map((reply) => reply.status))).toEqual(new Set([401]));
    expect(await clientCredentials(second, agent)).toMatchObject({ status: 403, body: { error: 'unauthorized_client' } });
    expect(await exchange(second, await mintIdToken(), agent.agentId)).toMatchObject({ status: 403, body: { error: 'unauthorized_client' } });

    expect((await send(second, `/api/v1/agents/${agent.agentId}/reactivate`, bearer(admin, { method: 'POST' }))).status).toBe(200);
    expect((await clientCredentials(first, agent)).status).toBe(200);
    expect((await exchange(first, await mintIdToken(), agent.agentId)).status).toBe(200);
    expect((await send(first, '/api/v1/agents', bearer(token))).status).toBe(401); // suspension killed it for good
  });

  it('honours a decommission at once: tokens, credentials and GitHub exchanges all end', async () => {
    const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
    await trustRepository(first, admin, agent.agentId);
    const fromExchange = (await exchange(second, await mintIdToken(), agent.agentId)).body.access_token as string;
    const { before, after } = await probeAcross(
      () => send(first, `/api/v1/agents/${agent.agentId}`, bearer(admin, { method: 'DELETE' })),
      () => send(second, '/api/v1/agents', bearer(fromExchange)),
    );
    expect(new Set(before)).toEqual(new Set([200]));
    expect(new Set(after.map((reply) => reply.status))).toEqual(new Set([401]));
    expect(await clientCredentials(second, agent)).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await exchange(second, await mintIdToken(), agent.agentId)).toMatchObject({ status: 403, body: { error: 'unauthorized_client' } });
  });

  it('honours a credential revocation at once, for the credential and the tokens it obtained', async () => {
    const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
    const token = await getToken(second, agent.agentId, agent.clientSecret);
    const { before, after } = await probeAcross(
      () => send(first, `/api/v1/agents/${agent.agentId}/credentials/${agent.credentialId}`, bearer(admin, { method: 'DELETE' })),
      () => clientCredentials(second, agent),
    );
    expect(new Set(before)).toEqual(new Set([200]));
    for (const reply of after) expect(reply.body).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    expect((await send(second, '/api/v1/agents', bearer(token))).status).toBe(401);
  });

  it('signs with one key set: every token of either instance verifies at the other and against either JWKS', async () => {
    const agent = await createAgent(first, admin, { scopes: ['tokens:read'] });
    await trustRepository(first, admin, agent.agentId);
    const tokens = await mapLimit(Array.from({ length: 24 }, (_, i) => i), 8, async (i) => {
      const instance = i % 2 ? first : second;
      const reply = i % 3 === 0 ? await exchange(instance, await mintIdToken(), agent.agentId) : await clientCredentials(instance, agent);
      expect(reply.status).toBe(200);
      return { token: reply.body.access_token as string, issuer: instance };
    });
    const [firstJwks, secondJwks] = await Promise.all([first, second].map((instance) => send(instance, '/.well-known/jwks.json')));
    expect(firstJwks.body).toEqual(secondJwks.body);
    const keySet = createLocalJWKSet(secondJwks.body);
    for (const { token, issuer } of tokens) {
      const other = issuer === first ? second : first;
      const { payload } = await jwtVerify(token, keySet, { issuer: 'http://idp.test', typ: 'at+jwt' });
      expect(payload.sub).toBe(agent.agentId);
      const introspection = await send(other, '/api/v1/token/introspect', bearer(token, form({ token })));
      expect(introspection.body).toMatchObject({ active: true, jti: payload.jti });
    }
  });
});

describeWithPostgres('one GitHub ID token, many concurrent uses', () => {
  let first: TestServer;
  let second: TestServer;
  let admin: string;
  beforeAll(async () => {
    [first, second] = await startPair();
    admin = await adminToken(first);
  });
  afterAll(async () => {
    await second.stop();
    await first.stop();
  });

  it('exchanges it exactly once across both instances; every other use is invalid_grant', async () => {
    const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
    await trustRepository(first, admin, agent.agentId);
    for (let round = 0; round < 3; round += 1) {
      const idToken = await mintIdToken();
      const replies = await Promise.all(Array.from({ length: 16 }, (_, i) => exchange(i % 2 ? first : second, idToken, agent.agentId)));
      expect(countBy(replies)).toEqual({ 200: 1, 400: 15 });
      for (const replay of replies.filter((reply) => reply.status === 400)) {
        expect(replay.body).toEqual({ error: 'invalid_grant', error_description: 'The GitHub ID token has already been used.' });
      }
    }
    const granted = await first.deps.knex('access_tokens').where({ agent_id: agent.agentId, grant_type: 'github_oidc' }).count({ n: '*' });
    expect(granted).toEqual([{ n: 3 }]);
  });

  it('spends it once across /oidc/token and /oidc/register alike', async () => {
    const agent = await createAgent(first, admin, { scopes: ['agents:read'] });
    await trustRepository(first, admin, agent.agentId);
    const registration = await send(first, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, scopes: ['agents:read'] }, admin));
    expect(registration.status).toBe(201);
    const idToken = await mintIdToken();
    const replies = await Promise.all(
      Array.from({ length: 16 }, (_, i) => {
        const instance = i % 2 ? first : second;
        return i % 4 < 2
          ? exchange(instance, idToken, agent.agentId)
          : send(instance, '/api/v1/oidc/register', json('POST', { token: idToken, name: 'raced-registration' }));
      }),
    );
    const successes = replies.filter((reply) => reply.status < 300);
    expect(successes).toHaveLength(1);
    expect(replies.filter((reply) => reply.status === 400 && reply.body.error === 'invalid_grant')).toHaveLength(15);
  });
});

describeWithPostgres('the audit chain under concurrent writes on two instances', () => {
  it('verifies on both instances after a mixed write load, with every event linked exactly once', async () => {
    const [first, second] = await startPair();
    try {
      const admin = await adminToken(first);
      const agents = await Promise.all(Array.from({ length: 4 }, (_, i) => createAgent(i % 2 ? first : second, admin, { name: `writer-${i}`, scopes: ['agents:read'] })));
      for (const agent of agents) await trustRepository(first, admin, agent.agentId);
      // The first exchange binds the policy to the repository's ids (an extra event); do it now.
      expect((await exchange(first, await mintIdToken(), agents[2].agentId)).status).toBe(200);
      const beforeCount = Number((await first.deps.knex('audit_events').count({ n: '*' }))[0].n);

      // Each operation writes exactly one audit event (or, for a refused exchange, one too).
      const operations: ((instance: TestServer) => Promise<Reply>)[] = [
        (instance) => clientCredentials(instance, agents[0]),
        (instance) => clientCredentials(instance, agents[1]),
        async (instance) => exchange(instance, await mintIdToken(), agents[2].agentId),
        async (instance) => exchange(instance, await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: 'https://someone.else' }), agents[2].agentId),
        (instance) => send(instance, '/api/v1/agents', json('POST', { name: 'burst' }, admin)),
        (instance) => send(instance, `/api/v1/agents/${agents[3].agentId}`, json('PATCH', { description: `at ${Date.now()}` }, admin)),
        (instance) => send(instance, `/api/v1/agents/${agents[3].agentId}/credentials`, bearer(admin, { method: 'POST' })),
        async (instance) => {
          const token = await getToken(instance, agents[1].agentId, agents[1].clientSecret); // token.issued
          return send(instance === first ? second : first, '/api/v1/token/revoke', bearer(token, form({ token }))); // token.revoked
        },
      ];
      const eventsPer = [1, 1, 1, 1, 1, 1, 1, 2];
      const plan = Array.from({ length: 200 }, (_, i) => i % operations.length);
      const verifications: Reply[] = [];
      const replies = await mapLimit(plan, 12, async (operation, i) => {
        // Verification in the middle of the load: the linkers of both instances run concurrently with it.
        if (i % 50 === 25) verifications.push(await send(i % 2 ? first : second, '/api/v1/audit/verify', bearer(admin)));
        return operations[operation](i % 2 ? first : second);
      });
      expect(replies.filter((reply) => reply.status >= 500)).toEqual([]);
      for (const verification of verifications) expect(verification.body.valid).toBe(true);

      const expectedNew = plan.reduce((sum, operation) => sum + eventsPer[operation], 0);
      const [fromFirst, fromSecond] = await Promise.all([first, second].map((instance) => send(instance, '/api/v1/audit/verify', bearer(admin))));
      const total = Number((await first.deps.knex('audit_events').count({ n: '*' }))[0].n);
      expect(total - beforeCount).toBe(expectedNew);
      expect(fromFirst.body).toEqual({ valid: true, checked: total, digestsChecked: 0 });
      expect(fromSecond.body).toEqual({ valid: true, checked: total, digestsChecked: 0 });
      const seqs = await first.deps.knex('audit_events').orderBy('chain_seq').pluck('chain_seq');
      expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});
