/**
 * The batched statements decide each call exactly as if it ran alone: calls made in the
 * same tick share one batch (the Batcher sends on the next microtask), so these cases
 * run inside one batch by construction.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createExchangeAdmission } from '../../server/src/github/exchange-admission.js';
import type { GitHubClaims } from '../../server/src/github/verify-id-token.js';
import { GrantGateClosed, GrantReplayed, type GrantRequest } from '../../server/src/oauth/access-tokens.js';
import { adminToken, createAgent, type AgentWithSecret } from '../support/api.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const MONTHLY_LIMIT = 3;

describe('batched grants and exchange admissions', () => {
  let server: TestServer;
  let agent: AgentWithSecret;
  let admin: string;
  beforeAll(async () => {
    server = await startTestServer({ env: { MONTHLY_TOKEN_LIMIT: String(MONTHLY_LIMIT) } });
    admin = await adminToken(server);
    agent = await createAgent(server, admin, { scopes: ['agents:read'] });
  });
  afterAll(() => server.stop());

  const grant = (agentId: string, credentialId: string | null = null): GrantRequest => ({
    agentId,
    orgId: agent.orgId,
    credentialId,
    grantType: 'client_credentials',
    scopes: ['agents:read'],
    audience: server.config.publicUrl,
    audit: { type: 'token.issued', actor: `agent:${agentId}`, data: {} },
  });

  const claimsFor = (jti: string) =>
    ({ jti, exp: Math.floor(Date.now() / 1000) + 300, repository: 'Octo-Org/Octo-Repo' }) as unknown as GitHubClaims;

  it('spends a single-use token used twice in one batch exactly once, in issue_grants, and counts only the grant that spent it', async () => {
    const fresh = await createAgent(server, admin, { scopes: ['agents:read'] });
    const spending = (key: string): GrantRequest => ({ ...grant(fresh.agentId), usedJti: { key, exp: Math.floor(Date.now() / 1000) + 300 } });
    const key = `https://issuer.example#${crypto.randomUUID()}`;
    const settled = await Promise.allSettled([
      server.deps.tokens.issue(spending(key)),
      server.deps.tokens.issue(spending(`https://issuer.example#${crypto.randomUUID()}`)),
      server.deps.tokens.issue(spending(key)),
      server.deps.tokens.issue(grant(fresh.agentId)), // spends nothing
    ]);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(GrantReplayed);
    await expect(server.deps.tokens.issue(spending(key))).rejects.toBeInstanceOf(GrantReplayed);
    expect(await server.deps.knex('github_used_jtis').where({ jti: key }).first()).toBeDefined();
    // The replays were issued nothing and counted nowhere.
    const quota = await server.deps.knex('token_quotas').where({ agent_id: fresh.agentId }).first();
    expect(quota.count).toBe(3);
    const issued = await server.deps.knex('access_tokens').where({ agent_id: fresh.agentId }).count({ n: '*' });
    expect(Number(issued[0].n)).toBe(3);
  });

  it('spends the token of a grant its gate refuses', async () => {
    const scopeless = await createAgent(server, admin, { scopes: [] });
    const key = `https://issuer.example#${crypto.randomUUID()}`;
    const request: GrantRequest = { ...grant(scopeless.agentId), orgId: scopeless.orgId, usedJti: { key, exp: Math.floor(Date.now() / 1000) + 300 } };
    await expect(server.deps.tokens.issue(request)).rejects.toBeInstanceOf(GrantGateClosed);
    await expect(server.deps.tokens.issue(request)).rejects.toBeInstanceOf(GrantReplayed);
  });

  it('reads each exchange its own agent, and writes nothing', async () => {
    const admit = createExchangeAdmission(server.deps.query);
    const unknownAgent = crypto.randomUUID();
    const claims = claimsFor(crypto.randomUUID());
    const [known, unknown, again] = await Promise.all([admit(claims, agent.agentId), admit(claimsFor(crypto.randomUUID()), unknownAgent), admit(claims, agent.agentId)]);
    const expected = { agent: { status: 'active', scopes: ['agents:read'], orgId: agent.orgId, orgStatus: 'active' }, policies: [] };
    expect(known).toEqual(expected);
    expect(again).toEqual(expected);
    expect(unknown).toEqual({ agent: undefined, policies: [] });
    expect(await server.deps.knex('github_used_jtis').where('jti', 'like', `%${claims.jti}`).first()).toBeUndefined();
  });

  it('grants exactly the monthly quota when one batch holds more grants than it allows, and refuses only the gated one', async () => {
    const other = await createAgent(server, admin, { scopes: [] });
    const settled = await Promise.allSettled([
      ...Array.from({ length: MONTHLY_LIMIT + 2 }, () => server.deps.tokens.issue(grant(agent.agentId, agent.credentialId))),
      server.deps.tokens.issue(grant(other.agentId, other.credentialId)), // lacks the scope: the gate closes
    ]);
    const forAgent = settled.slice(0, MONTHLY_LIMIT + 2);
    expect(forAgent.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(MONTHLY_LIMIT);
    for (const outcome of forAgent.filter((o) => o.status === 'rejected')) {
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ oauthCode: 'unauthorized_client', status: 403 });
    }
    expect(settled.at(-1)).toMatchObject({ status: 'rejected', reason: expect.any(GrantGateClosed) });
    const quota = await server.deps.knex('token_quotas').where({ agent_id: agent.agentId }).first();
    expect(quota.count).toBe(MONTHLY_LIMIT);
  });

  it('fails only the bad grant of a batch that the database refuses as a whole', async () => {
    const fresh = await createAgent(server, admin, { scopes: ['agents:read'] });
    const settled = await Promise.allSettled([
      server.deps.tokens.issue(grant(fresh.agentId, fresh.credentialId)),
      server.deps.tokens.issue(grant('not-a-uuid')), // the uuid[] cast fails the whole statement
      server.deps.tokens.issue(grant(fresh.agentId, fresh.credentialId)),
    ]);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const tokens = await server.deps.knex('access_tokens').where({ agent_id: fresh.agentId }).count({ n: '*' });
    expect(Number(tokens[0].n)).toBe(2);
    const audited = await server.deps.knex('audit_events').where({ agent_id: fresh.agentId, type: 'token.issued' }).count({ n: '*' });
    expect(Number(audited[0].n)).toBe(2);
  });
});
