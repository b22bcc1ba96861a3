/**
 * A token lives no longer than what it was issued through: its agent's scopes, its
 * credential, the trust policies of its exchange (issue 13, finding 5). Taking any of them
 * away makes the token inactive at the next request, on every instance.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, createAgent, form, getToken, json, send } from '../support/api.js';
import type { TestServer } from '../support/test-server.js';
import { auditEvents, createPolicy, exchange, mintIdToken, startHarness, type Harness } from '../github/exchange-harness.js';

let h: Harness;
let peer: TestServer;
beforeAll(async () => {
  h = await startHarness();
  peer = await h.startPeer();
});
afterAll(async () => {
  await h.stop();
});

async function isActive(token: string, server: { url: string } = h.server): Promise<boolean> {
  const reply = await send(server, '/api/v1/token/introspect', bearer(h.admin, form({ token })));
  expect(reply.status).toBe(200);
  return reply.body.active;
}

describe('an agent losing a scope', () => {
  it('revokes its live tokens, on every instance, and audits the old and new scopes', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read', 'audit:read', 'tokens:read'] });
    const token = await getToken(h.server, agent.agentId, agent.clientSecret);
    expect((await send(peer, '/api/v1/audit?limit=1', bearer(token))).status).toBe(200);

    const patched = await send(h.server, `/api/v1/agents/${agent.agentId}`, json('PATCH', { scopes: ['agents:read', 'tokens:read'] }, h.admin));
    expect(patched.status).toBe(200);

    expect(await isActive(token, peer)).toBe(false);
    expect((await send(peer, '/api/v1/audit?limit=1', bearer(token))).status).toBe(401);
    expect((await send(peer, '/api/v1/agents', bearer(token))).status).toBe(401);
    // A new token carries what the agent holds now.
    const fresh = await send(h.server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }));
    expect(fresh.body.scope).toBe('agents:read tokens:read');

    const [event] = await auditEvents(h, 'agent.updated', agent.agentId);
    expect(event.data).toEqual({
      changed: ['scopes'],
      changes: { scopes: { from: ['agents:read', 'audit:read', 'tokens:read'], to: ['agents:read', 'tokens:read'] } },
      revokedTokens: 1,
    });
  });

  it('leaves tokens alone when nothing is taken away, and audits each changed value', async () => {
    const agent = await createAgent(h.server, h.admin, { name: 'before', scopes: ['agents:read'] });
    const token = await getToken(h.server, agent.agentId, agent.clientSecret);
    const patch = { name: 'after', description: 'renamed', scopes: ['agents:read', 'tokens:read'] };
    expect((await send(h.server, `/api/v1/agents/${agent.agentId}`, json('PATCH', patch, h.admin))).status).toBe(200);
    expect(await isActive(token)).toBe(true);
    const [event] = await auditEvents(h, 'agent.updated', agent.agentId);
    expect(event.data).toEqual({
      changed: ['name', 'description', 'scopes'],
      changes: {
        name: { from: 'before', to: 'after' },
        description: { from: null, to: 'renamed' },
        scopes: { from: ['agents:read'], to: ['agents:read', 'tokens:read'] },
      },
    });
  });
});

describe('a trust policy deleted', () => {
  it('revokes the tokens issued through it, and only those, on every instance', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read'] });
    const onMain = await createPolicy(h, { agentId: agent.agentId, branch: 'main' });
    await createPolicy(h, { agentId: agent.agentId, branch: 'feature/*' });
    const fromMain = (await exchange(h.server, await mintIdToken(h.github, 'push-main'), agent.agentId)).body.access_token;
    const fromFeature = (await exchange(h.server, await mintIdToken(h.github, 'push-feature-branch'), agent.agentId)).body.access_token;
    const fromSecret = await getToken(h.server, agent.agentId, agent.clientSecret);
    expect([await isActive(fromMain), await isActive(fromFeature)]).toEqual([true, true]);

    expect((await send(h.server, `/api/v1/oidc/trust-policies/${onMain.id}`, bearer(h.admin, { method: 'DELETE' }))).status).toBe(200);

    expect(await isActive(fromMain, peer)).toBe(false);
    expect((await send(peer, '/api/v1/agents', bearer(fromMain))).status).toBe(401);
    expect(await isActive(fromFeature, peer)).toBe(true);
    expect(await isActive(fromSecret, peer)).toBe(true);
    const [event] = await auditEvents(h, 'trust_policy.deleted', agent.agentId);
    expect(event.data).toEqual({ policyId: onMain.id, revokedTokens: 1 });
  });

  it('records every policy that matched: deleting any one of them revokes the token', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read', 'tokens:read'] });
    const narrow = await createPolicy(h, { agentId: agent.agentId, scopes: ['agents:read'] });
    await createPolicy(h, { agentId: agent.agentId, branch: 'main', scopes: ['tokens:read'] });
    const token = (await exchange(h.server, await mintIdToken(h.github, 'push-main'), agent.agentId)).body.access_token;
    expect((await h.server.deps.knex('access_tokens').where({ agent_id: agent.agentId }).first()).trust_policy_ids).toHaveLength(2);
    expect((await send(h.server, `/api/v1/oidc/trust-policies/${narrow.id}`, bearer(h.admin, { method: 'DELETE' }))).status).toBe(200);
    expect(await isActive(token)).toBe(false);
  });
});

describe('when the marking is missed (a grant that raced the change)', () => {
  // The services mark tokens revoked; a token recorded just after that marking must be
  // inactive all the same. Changing the rows behind the services' back shows the check
  // made at each request.
  it('treats a token as inactive once its agent no longer holds one of its scopes', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read', 'tokens:read'] });
    const token = await getToken(h.server, agent.agentId, agent.clientSecret);
    await h.server.deps.knex('agents').where({ id: agent.agentId }).update({ scopes: ['agents:read'] });
    expect(await isActive(token, peer)).toBe(false);
  });

  it('treats a token as inactive once its credential is revoked', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read'] });
    const token = await getToken(h.server, agent.agentId, agent.clientSecret);
    await h.server.deps.knex('credentials').where({ id: agent.credentialId }).update({ revoked_at: new Date() });
    expect(await isActive(token, peer)).toBe(false);
  });

  it('treats a token as inactive once one of its trust policies is gone', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read'] });
    const policy = await createPolicy(h, { agentId: agent.agentId });
    const token = (await exchange(h.server, await mintIdToken(h.github, 'push-main'), agent.agentId)).body.access_token;
    await h.server.deps.knex('trust_policies').where({ id: policy.id }).delete();
    expect(await isActive(token, peer)).toBe(false);
  });

  it('issues nothing through a trust policy that no longer exists (the grant gate)', async () => {
    const agent = await createAgent(h.server, h.admin, { scopes: ['agents:read'] });
    const policy = await createPolicy(h, { agentId: agent.agentId });
    const grant = (policies: string) =>
      h.server.deps.knex.raw(
        `select gate, issued from issue_grants(array[?::uuid], array[null::uuid], array['agents:read'], array[0::bigint], 0,
           array['2026-11'], 0, array[?::uuid], array['github_oidc'], array[0::bigint], array[60::bigint],
           array['oidc.exchange.granted'], array['test'], array['{}'::jsonb], array[?], array[null::uuid], array[null::int])`,
        [agent.agentId, crypto.randomUUID(), policies],
      );
    expect((await grant(policy.id)).rows).toEqual([{ gate: 1, issued: 1 }]);
    expect((await grant(`${policy.id} ${crypto.randomUUID()}`)).rows).toEqual([{ gate: 0, issued: 0 }]);
    const other = await createPolicy(h, { agentId: (await createAgent(h.server, h.admin)).agentId });
    expect((await grant(other.id)).rows).toEqual([{ gate: 0, issued: 0 }]);
  });
});
