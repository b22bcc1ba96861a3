/**
 * Organizations across two instances on one PostgreSQL database (slow: jest.slow.config.js).
 * - Suspending an organization on one instance stops its tokens on the other at once (the
 *   token-state lookup reads the organization), and its grants there; reactivation restores
 *   new issuance, never the old tokens.
 * - maxAgents holds under concurrent creations on both instances.
 * - The organization's monthly limit is exact under 300 concurrent grants split across both
 *   instances and several agents, and another organization's grants are unaffected.
 * Test servers run with MONTHLY_TOKEN_LIMIT=0 and RATE_LIMIT_PER_MINUTE=0 (their defaults).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isRealPostgres } from '../support/database.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, getToken, json, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { claimsOfJwt, readWholeAuditLog } from '../support/load.js';

// Several pools on one database need a real server; embedded PGlite is one in-process connection.
const describeWithPostgres = isRealPostgres ? describe : describe.skip;

let first: TestServer;
let second: TestServer;
let platform: string;

async function createOrg(slug: string, limits: Record<string, number | null> = {}): Promise<string> {
  const reply = await send(first, '/api/v1/orgs', json('POST', { slug, name: slug, limits }, platform));
  if (reply.status !== 201) throw new Error(`create org: ${reply.status} ${reply.text}`);
  return reply.body.orgId;
}

/** An agent of `orgId` made by the platform admin (so that no grant of the organization is spent on an admin). */
async function agentIn(orgId: string, name: string): Promise<AgentWithSecret> {
  const created = await send(first, '/api/v1/agents', json('POST', { name, orgId, scopes: ['agents:read'] }, platform));
  if (created.status !== 201) throw new Error(`create agent: ${created.status} ${created.text}`);
  const credential = await send(second, `/api/v1/agents/${created.body.agentId}/credentials`, bearer(platform, { method: 'POST' }));
  if (credential.status !== 201) throw new Error(`create credential: ${credential.status} ${credential.text}`);
  return { agentId: created.body.agentId, orgId, clientSecret: credential.body.clientSecret, credentialId: credential.body.credentialId };
}

const clientCredentials = (server: TestServer, agent: AgentWithSecret) =>
  send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
const introspect = (server: TestServer, caller: string, token: string) => send(server, '/api/v1/token/introspect', bearer(caller, form({ token })));

function countBy(replies: readonly Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const reply of replies) counts[reply.status] = (counts[reply.status] ?? 0) + 1;
  return counts;
}

describeWithPostgres('organizations across two instances', () => {
  beforeAll(async () => {
    first = await startTestServer({ env: { MONTHLY_TOKEN_LIMIT: '0', RATE_LIMIT_PER_MINUTE: '0' } });
    second = await startTestServer({ env: { MONTHLY_TOKEN_LIMIT: '0', RATE_LIMIT_PER_MINUTE: '0' }, shareWith: first });
    platform = await adminToken(first);
  });
  afterAll(async () => {
    await second?.stop();
    await first?.stop();
  });

  it('a suspension on one instance stops the organization’s tokens on the other at once; reactivation restores new issuance only', async () => {
    const orgId = await createOrg('suspended-across');
    const created = await send(first, '/api/v1/orgs', json('POST', { slug: 'bystander-across', name: 'Bystander', admin: { name: 'admin', scopes: ['tokens:read'] } }, platform));
    expect(created.status).toBe(201);
    const agent = await agentIn(orgId, 'worker');
    const bystander = await agentIn(created.body.orgId, 'bystander');
    const token = await getToken(second, agent.agentId, agent.clientSecret);
    const bystanderToken = await getToken(first, bystander.agentId, bystander.clientSecret);
    // Seen active on the second instance (and so in whatever it holds about the token).
    expect((await introspect(second, platform, token)).body).toMatchObject({ active: true, org_id: orgId });
    expect((await send(second, '/api/v1/agents', bearer(token))).status).toBe(200);

    const suspended = await send(first, `/api/v1/orgs/${orgId}/suspend`, bearer(platform, { method: 'POST' }));
    expect(suspended.status).toBe(200);
    expect(suspended.body.status).toBe('suspended');

    expect((await introspect(second, platform, token)).body).toEqual({ active: false });
    expect((await send(second, '/api/v1/agents', bearer(token))).status).toBe(401);
    for (const server of [second, first]) {
      const refused = await clientCredentials(server, agent);
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'Organization is suspended.' });
    }
    // The other organization goes on.
    expect((await introspect(second, platform, bystanderToken)).body).toMatchObject({ active: true, org_id: created.body.orgId });
    expect((await clientCredentials(second, bystander)).status).toBe(200);

    expect((await send(second, `/api/v1/orgs/${orgId}/reactivate`, bearer(platform, { method: 'POST' }))).body.status).toBe('active');
    for (const server of [first, second]) expect((await introspect(server, platform, token)).body).toEqual({ active: false });
    const fresh = await getToken(first, agent.agentId, agent.clientSecret);
    expect((await introspect(second, platform, fresh)).body).toMatchObject({ active: true, org_id: orgId });
  });

  it('never exceeds maxAgents under concurrent creations on both instances', async () => {
    const orgId = await createOrg('crowded-across', { maxAgents: 7 });
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => send(i % 2 ? first : second, '/api/v1/agents', json('POST', { name: `racer-${i}`, orgId }, platform))),
    );
    expect(countBy(replies)).toEqual({ 201: 7, 403: 33 });
    for (const refusal of replies.filter((reply) => reply.status === 403)) {
      expect(refusal.body).toEqual({ code: 'FORBIDDEN', message: "The organization's limit of 7 agents has been reached." });
    }
    expect(Number((await first.deps.knex('agents').where({ org_id: orgId }).count({ n: '*' }))[0].n)).toBe(7);
    expect(await readWholeAuditLog(first, platform, `&orgId=${orgId}&type=agent.created`)).toHaveLength(7);
  });

  it('grants exactly the organization’s monthly limit under 300 concurrent grants across both instances', async () => {
    const LIMIT = 120;
    const orgId = await createOrg('limited-across', { monthlyTokens: LIMIT });
    const otherOrgId = await createOrg('unlimited-across', { monthlyTokens: 50 });
    const agents = await Promise.all(Array.from({ length: 6 }, (_, i) => agentIn(orgId, `grantee-${i}`)));
    const others = await Promise.all(Array.from({ length: 2 }, (_, i) => agentIn(otherOrgId, `other-${i}`)));

    const limited = Array.from({ length: 300 }, (_, i) => () => clientCredentials(i % 2 ? first : second, agents[i % agents.length]));
    const unaffected = Array.from({ length: 40 }, (_, i) => () => clientCredentials(i % 2 ? second : first, others[i % others.length]));
    const [replies, otherReplies] = await Promise.all([Promise.all(limited.map((request) => request())), Promise.all(unaffected.map((request) => request()))]);

    expect(countBy(replies)).toEqual({ 200: LIMIT, 403: 300 - LIMIT });
    for (const refusal of replies.filter((reply) => reply.status === 403)) {
      expect(refusal.body).toEqual({ error: 'unauthorized_client', error_description: `Organization monthly token limit of ${LIMIT} has been reached.` });
    }
    expect(countBy(otherReplies)).toEqual({ 200: 40 });
    // Both instances granted some of them.
    const grantedOn = new Set(replies.map((reply, i) => (reply.status === 200 ? i % 2 : undefined)).filter((side) => side !== undefined));
    expect(grantedOn.size).toBe(2);

    const grantedJtis = replies.filter((reply) => reply.status === 200).map((reply) => claimsOfJwt(reply.body.access_token));
    expect(grantedJtis.every((claims) => claims.org_id === orgId)).toBe(true);
    expect(new Set(grantedJtis.map((claims) => claims.jti)).size).toBe(LIMIT);

    // The bookkeeping agrees: one access_tokens row and one token.issued event per grant.
    const knex = first.deps.knex;
    const rows = await knex('access_tokens').whereIn('agent_id', agents.map((agent) => agent.agentId)).pluck('jti');
    expect(rows.sort()).toEqual(grantedJtis.map((claims) => claims.jti).sort());
    const issued = (await readWholeAuditLog(second, platform, `&orgId=${orgId}&type=token.issued`)).length;
    expect(issued).toBe(LIMIT);

    // Usage: the grants at once; the refusals once each instance has written its own.
    const firstUsage = await send(first, `/api/v1/orgs/${orgId}/usage`, bearer(platform));
    expect(firstUsage.status).toBe(200);
    expect(firstUsage.body.tokens.granted).toBe(LIMIT);
    expect(firstUsage.body.tokens.limit).toBe(LIMIT);
    expect(firstUsage.body.tokens.byAgent.reduce((sum: number, row: { granted: number }) => sum + row.granted, 0)).toBe(LIMIT);
    const usage = await send(second, `/api/v1/orgs/${orgId}/usage`, bearer(platform));
    expect(usage.body.tokens.granted).toBe(LIMIT);
    expect(usage.body.refusals).toEqual({ org_monthly_limit: 300 - LIMIT });
    expect((await send(first, `/api/v1/orgs/${otherOrgId}/usage`, bearer(platform))).body.tokens).toMatchObject({ granted: 40, limit: 50 });

    // Still refused afterwards, on either instance.
    for (const server of [first, second]) expect((await clientCredentials(server, agents[0])).status).toBe(403);

    const verify = await send(first, '/api/v1/audit/verify', bearer(platform));
    expect(verify.body).toMatchObject({ valid: true });
  });
});
