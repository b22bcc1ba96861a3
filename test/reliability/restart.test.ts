/**
 * An instance stops and a new one starts on the same PostgreSQL database: everything that
 * matters lives in the database, so nothing is lost, reset or issued twice.
 * (test/process/embedded-start.test.ts covers the embedded database's DATA_DIR.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { createTestDatabase, isRealPostgres, type TestDatabase } from '../support/database.js';
import { ADMIN, startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, json, send, type AgentWithSecret } from '../support/api.js';
import { claimsOfJwt, readWholeAuditLog } from '../support/load.js';
import { startOfNextMinute, testClock } from '../support/clock.js';

const AUDIENCE = 'https://idp.test/github';
const describeWithPostgres = isRealPostgres ? describe : describe.skip; // the embedded test database is in memory: it ends with its process (DATA_DIR restarts: test/process)

describeWithPostgres('restarting on the same database', () => {
  let github: FakeGitHubIssuer;
  let testDatabase: TestDatabase;
  let env: Record<string, string>;
  beforeAll(async () => {
    github = await startFakeGitHubIssuer({ audience: AUDIENCE });
    testDatabase = await createTestDatabase();
    env = { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE, MONTHLY_TOKEN_LIMIT: '10', RATE_LIMIT_PER_MINUTE: '50' };
  });
  afterAll(async () => {
    await testDatabase.drop();
    await github.close();
  });

  const tokenRequest = (server: TestServer, agent: AgentWithSecret) =>
    send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));

  it('keeps tokens, revocations, keys, counters, spent ID tokens and the audit chain, and issues nothing twice', async () => {
    // Both instances on one clock, one second into a minute: the rate-limit window spans the restart.
    const clock = testClock(startOfNextMinute());
    // Before: one instance does some of everything, then stops.
    let server = await startTestServer({ testDatabase, env, clock });
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin, { scopes: ['agents:read'] });
    const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/octo-repo', agentId: agent.agentId }, admin));
    expect(policy.status).toBe(201);
    const idToken = await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE });
    const exchanged = await send(server, '/api/v1/oidc/token', json('POST', { token: idToken, agentId: agent.agentId }));
    expect(exchanged.status).toBe(200);
    const issuedBefore = [exchanged.body.access_token as string];
    for (let i = 0; i < 5; i += 1) issuedBefore.push((await tokenRequest(server, agent)).body.access_token);
    const revoked = issuedBefore[1];
    expect((await send(server, '/api/v1/token/revoke', bearer(revoked, form({ token: revoked })))).status).toBe(200);
    // This client's 8th counted request this minute (exchange, 5 grants, the revocation, this one) and 7th grant this month.
    const lastBefore = await tokenRequest(server, agent);
    expect(lastBefore.headers.get('x-ratelimit-remaining')).toBe('42');
    issuedBefore.push(lastBefore.body.access_token);
    const jwksBefore = (await send(server, '/.well-known/jwks.json')).body;
    const auditBefore = await readWholeAuditLog(server, admin);
    const verifiedBefore = (await send(server, '/api/v1/audit/verify', bearer(admin))).body;
    expect(verifiedBefore.valid).toBe(true);
    await server.stop();
    expect((await send(server, '/healthz').catch((error: Error) => ({ status: error.name })))).toEqual({ status: 'TypeError' }); // really gone

    // After: a new instance on the same database.
    server = await startTestServer({ testDatabase, env, clock });
    try {
      expect(server.generatedAdmin).toBeUndefined();
      const knex = server.deps.knex;
      expect(await knex('agents').where({ name: 'bootstrap-admin' }).count({ n: '*' })).toEqual([{ n: 1 }]);
      expect(await knex('signing_keys').count({ n: '*' })).toEqual([{ n: 1 }]);
      expect((await send(server, '/.well-known/jwks.json')).body).toEqual(jwksBefore);

      // Tokens issued before the restart: live ones still work, the revoked one stays dead.
      for (const token of issuedBefore) {
        const introspection = await send(server, '/api/v1/token/introspect', bearer(admin, form({ token })));
        expect(introspection.body.active).toBe(token !== revoked);
        expect((await send(server, `/api/v1/agents/${agent.agentId}`, bearer(token))).status).toBe(token === revoked ? 401 : 200);
      }
      // The spent ID token stays spent.
      const replay = await send(server, '/api/v1/oidc/token', json('POST', { token: idToken, agentId: agent.agentId }));
      expect(replay.body).toEqual({ error: 'invalid_grant', error_description: 'The GitHub ID token has already been used.' });

      // Counters continue: 7 of 10 grants are used, and the minute's window goes on counting.
      const replies = await Promise.all(Array.from({ length: 6 }, () => tokenRequest(server, agent)));
      expect(replies.filter((reply) => reply.status === 200)).toHaveLength(3);
      expect(replies.filter((reply) => reply.status === 403)).toHaveLength(3);
      const remaining = replies.map((reply) => Number(reply.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b);
      expect(remaining).toEqual([36, 37, 38, 39, 40, 41]);
      const issuedAfter = replies.filter((reply) => reply.status === 200).map((reply) => reply.body.access_token as string);

      // Same key, and no jti issued twice.
      const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid;
      expect(new Set([...issuedBefore, ...issuedAfter].map(kidOf)).size).toBe(1);
      const jtis = [...issuedBefore, ...issuedAfter].map((token) => claimsOfJwt(token).jti);
      expect(new Set(jtis).size).toBe(10);
      expect((await knex('access_tokens').where({ agent_id: agent.agentId }).pluck('jti')).sort()).toEqual([...jtis].sort());

      // The audit log keeps every event from before, and the chain continues from it.
      const adminAfter = await adminToken(server);
      const auditAfter = await readWholeAuditLog(server, adminAfter);
      expect(auditAfter.slice(-auditBefore.length)).toEqual(auditBefore);
      expect(auditAfter.length).toBeGreaterThan(auditBefore.length);
      expect((await send(server, '/api/v1/audit/verify', bearer(adminAfter))).body).toEqual({ valid: true, checked: auditAfter.length, digestsChecked: 0 });
    } finally {
      await server.stop();
    }
  });

  it('keeps the bootstrap admin exactly as configured across restarts, even with new bootstrap variables', async () => {
    const server = await startTestServer({ testDatabase, env: { ...env, BOOTSTRAP_ADMIN_CLIENT_SECRET: 'sk_live_a-different-secret-after-restart' } });
    try {
      // The agent already exists, so the new secret is not installed and the old one still works.
      const withNew = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: ADMIN.clientId, client_secret: 'sk_live_a-different-secret-after-restart' }));
      expect(withNew.status).toBe(401);
      expect((await adminToken(server)).length).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  });
});
