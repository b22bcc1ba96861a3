/**
 * The batched statements decide each call exactly as if it ran alone: calls made in the
 * same tick share one batch (the Batcher sends on the next microtask), so these cases
 * run inside one batch by construction.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createExchangeAdmission } from '../../server/src/github/exchange-admission.js';
import type { GitHubClaims } from '../../server/src/github/verify-id-token.js';
import { GrantGateClosed, type GrantRequest } from '../../server/src/oauth/access-tokens.js';
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

  it('spends an ID token used twice in one batch exactly once', async () => {
    const admit = createExchangeAdmission(server.deps.query, server.config);
    const claims = claimsFor(crypto.randomUUID());
    const other = claimsFor(crypto.randomUUID());
    const outcomes = await Promise.all([admit(claims, agent.agentId), admit(other, agent.agentId), admit(claims, agent.agentId)]);
    expect(outcomes.map((outcome) => outcome.isReplay)).toEqual([false, false, true]);
    expect(outcomes[0]).toEqual({ isReplay: false, agent: { status: 'active', scopes: ['agents:read'], orgId: agent.orgId, orgStatus: 'active' }, policies: [] });
    expect((await admit(claims, agent.agentId)).isReplay).toBe(true);
  });

  it('reads each admitted request its own agent', async () => {
    const admit = createExchangeAdmission(server.deps.query, server.config);
    const unknownAgent = crypto.randomUUID();
    const [known, unknown] = await Promise.all([
      admit(claimsFor(crypto.randomUUID()), agent.agentId),
      admit(claimsFor(crypto.randomUUID()), unknownAgent),
    ]);
    expect(known).toMatchObject({ isReplay: false, agent: { status: 'active' } });
    expect(unknown).toEqual({ isReplay: false, agent: undefined, policies: [] });
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
