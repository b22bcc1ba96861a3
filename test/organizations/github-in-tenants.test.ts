/**
 * The GitHub exchange and registration with organizations: a registration policy belongs
 * to an organization and so does the agent it makes; a workflow that two organizations'
 * registration policies let in registers in neither; re-runs are idempotent per
 * (organization, repository, name); a suspended organization gets no exchange and no
 * registration; the organization's monthly limit holds on the exchange too.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, createTenant, json, send, type Reply, type Tenant } from '../support/api.js';
import { REFUSAL, exchange, mintIdToken, register, startHarness, type Harness } from '../github/exchange-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

let nextRepositoryId = 900_000_000;
function newRepository() {
  const name = `tenant-org/repo-${randomUUID().slice(0, 8)}`;
  const id = String((nextRepositoryId += 1));
  return {
    name,
    claims: { repository: name, repository_id: id, workflow_ref: `${name}/.github/workflows/deploy.yml@refs/heads/main`, job_workflow_ref: `${name}/.github/workflows/deploy.yml@refs/heads/main` },
  };
}
type Repository = ReturnType<typeof newRepository>;

const newTenant = (limits?: Record<string, number>) =>
  createTenant(h.server, h.admin, { slug: `gh-${randomUUID().slice(0, 8)}`, limits, adminScopes: ['agents:read', 'agents:write', 'tokens:read', 'audit:read'] });

const registrationPolicyOf = (tenant: Tenant, repository: Repository) =>
  send(h.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: repository.name, scopes: ['agents:read'] }, tenant.admin));

const registerFrom = async (repository: Repository, name: string): Promise<Reply> =>
  register(h.server, await mintIdToken(h.github, 'push-main', repository.claims), name);

describe('registration into an organization', () => {
  it('makes the agent, its trust policy and its audit rows in the registration policy\'s organization; re-runs return it', async () => {
    const tenant = await newTenant();
    const repository = newRepository();
    const policy = await registrationPolicyOf(tenant, repository);
    expect(policy.status).toBe(201);
    expect(policy.body.orgId).toBe(tenant.orgId);

    const first = await registerFrom(repository, 'builder');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ orgId: tenant.orgId, created: true, scopes: ['agents:read'] });
    const again = await registerFrom(repository, 'builder');
    expect(again.body).toMatchObject({ agentId: first.body.agentId, created: false });

    // The tenant sees the agent, its new trust policy and the registration event; the platform's own lists do not.
    expect((await send(h.server, `/api/v1/agents/${first.body.agentId}`, bearer(tenant.admin))).status).toBe(200);
    const policies = await send(h.server, `/api/v1/oidc/trust-policies?agentId=${first.body.agentId}`, bearer(tenant.admin));
    expect(policies.body.data.map((p: { orgId: string }) => p.orgId)).toEqual([tenant.orgId]);
    const events = await send(h.server, `/api/v1/audit?type=agent.registered&agentId=${first.body.agentId}`, bearer(tenant.admin));
    expect(events.body.data).toHaveLength(1);
    const platformAgents = await send(h.server, '/api/v1/agents?limit=100', bearer(h.admin));
    expect(platformAgents.body.data.map((agent: { agentId: string }) => agent.agentId)).not.toContain(first.body.agentId);

    // The workflow exchanges for its agent, and the token says which organization.
    const token = await exchange(h.server, await mintIdToken(h.github, 'push-main', repository.claims), first.body.agentId);
    expect(token.status).toBe(200);
    const introspection = await send(h.server, '/api/v1/token/introspect', bearer(tenant.admin, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `token=${token.body.access_token}` }));
    expect(introspection.body).toMatchObject({ active: true, org_id: tenant.orgId, sub: first.body.agentId });
  });

  it('is idempotent per organization: the same repository and name in two organizations (registered in turn) are two agents', async () => {
    const [a, b] = [await newTenant(), await newTenant()];
    const repository = newRepository();
    const policyA = await registrationPolicyOf(a, repository);
    const inA = await registerFrom(repository, 'same-name');
    expect(inA.body).toMatchObject({ orgId: a.orgId, created: true });
    await send(h.server, `/api/v1/oidc/trust-policies/${policyA.body.id}`, bearer(a.admin, { method: 'DELETE' }));
    await registrationPolicyOf(b, repository);
    const inB = await registerFrom(repository, 'same-name');
    expect(inB.body).toMatchObject({ orgId: b.orgId, created: true });
    expect(inB.body.agentId).not.toBe(inA.body.agentId);
  });

  it('refuses a workflow that registration policies of two organizations let in, creating nothing', async () => {
    const [a, b] = [await newTenant(), await newTenant()];
    const repository = newRepository();
    await registrationPolicyOf(a, repository);
    await registrationPolicyOf(b, repository);
    const refused = await registerFrom(repository, 'contested');
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual(REFUSAL.violation);
    for (const tenant of [a, b]) {
      const agents = await send(h.server, '/api/v1/agents', bearer(tenant.admin));
      expect(agents.body.data.map((agent: { name: string }) => agent.name)).not.toContain('contested');
    }
  });

  it('refuses a repository that two organizations name, even when only one of their policies matches the run', async () => {
    // A tenant writes a looser policy for another tenant's repository, to catch the runs the owner's policy leaves out.
    const [owner, intruder] = [await newTenant(), await newTenant()];
    const repository = newRepository();
    await send(h.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: repository.name, branch: 'release/*', scopes: ['agents:read'] }, owner.admin));
    await registrationPolicyOf(intruder, repository);
    const refused = await registerFrom(repository, 'caught'); // push-main: only the intruder's policy matches
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual(REFUSAL.violation);
    const intruderEvents = await send(h.server, '/api/v1/audit?type=oidc.register.refused', bearer(intruder.admin));
    expect(intruderEvents.body.data).toEqual([]); // the refusal is the platform's: no tenant learns of the other's run
    const platformEvents = await send(h.server, '/api/v1/audit?type=oidc.register.refused', bearer(h.admin));
    expect(platformEvents.body.data[0].data).toMatchObject({ reason: 'registration policies of several organizations name this repository', name: 'caught' });
  });

  it("no longer counts a decommissioned organization's registration policies, and records identity bindings in the registering organization", async () => {
    const [gone, next] = [await newTenant(), await newTenant()];
    const repository = newRepository();
    await registrationPolicyOf(gone, repository);
    expect((await send(h.server, `/api/v1/orgs/${gone.orgId}`, bearer(h.admin, { method: 'DELETE' }))).body.status).toBe('decommissioned');
    await registrationPolicyOf(next, repository);
    const registered = await registerFrom(repository, 'after');
    expect(registered.body).toMatchObject({ orgId: next.orgId, created: true });
    const bound = await send(h.server, '/api/v1/audit?type=trust_policy.bound', bearer(next.admin));
    expect(bound.body.data.length).toBeGreaterThan(0);
    expect(bound.body.data.every((event: { orgId: string }) => event.orgId === next.orgId)).toBe(true);
  });

  it('refuses registration into a suspended organization, and into one at maxAgents', async () => {
    const suspended = await newTenant();
    const repository = newRepository();
    await registrationPolicyOf(suspended, repository);
    expect((await send(h.server, `/api/v1/orgs/${suspended.orgId}/suspend`, bearer(h.admin, { method: 'POST' }))).status).toBe(200);
    const refused = await registerFrom(repository, 'late');
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'Organization is suspended.' });

    const full = await newTenant({ maxAgents: 1 }); // its admin is the one agent
    const fullRepository = newRepository();
    await registrationPolicyOf(full, fullRepository);
    const overLimit = await registerFrom(fullRepository, 'one-too-many');
    expect(overLimit.status).toBe(403);
    expect(overLimit.body).toEqual({ error: 'access_denied', error_description: "The organization's limit of 1 agents has been reached." });
  });
});

describe('the exchange for an agent of an organization', () => {
  async function tenantAgentWithPolicy(tenant: Tenant, repository: Repository): Promise<string> {
    const agent = await send(h.server, '/api/v1/agents', json('POST', { name: `bot-${randomUUID().slice(0, 6)}`, scopes: ['agents:read'] }, tenant.admin));
    const policy = await send(h.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: repository.name, agentId: agent.body.agentId }, tenant.admin));
    expect([agent.status, policy.status]).toEqual([201, 201]);
    return agent.body.agentId;
  }

  it('is refused while the organization is suspended, and works again after reactivation', async () => {
    const tenant = await newTenant();
    const repository = newRepository();
    const agentId = await tenantAgentWithPolicy(tenant, repository);
    const exchangeNow = async () => exchange(h.server, await mintIdToken(h.github, 'push-main', repository.claims), agentId);
    expect((await exchangeNow()).status).toBe(200);
    await send(h.server, `/api/v1/orgs/${tenant.orgId}/suspend`, bearer(h.admin, { method: 'POST' }));
    const refused = await exchangeNow();
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'Organization is suspended.' });
    await send(h.server, `/api/v1/orgs/${tenant.orgId}/reactivate`, bearer(h.admin, { method: 'POST' }));
    expect((await exchangeNow()).status).toBe(200);
  });

  it('counts against the organization\'s monthly limit, as client-credentials grants do', async () => {
    const tenant = await newTenant({ monthlyTokens: 3 });
    const repository = newRepository();
    const agentId = await tenantAgentWithPolicy(tenant, repository);
    const replies: Reply[] = [];
    for (let i = 0; i < 4; i += 1) replies.push(await exchange(h.server, await mintIdToken(h.github, 'push-main', repository.claims), agentId));
    // The admin's own token (from newTenant) was the first grant of the month.
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 403, 403]);
    expect(replies[2].body).toEqual({ error: 'unauthorized_client', error_description: 'Organization monthly token limit of 3 has been reached.' });
    const usage = await send(h.server, `/api/v1/orgs/${tenant.orgId}/usage`, bearer(tenant.admin));
    expect(usage.body.tokens).toMatchObject({ granted: 3, limit: 3 });
    expect(usage.body.refusals).toEqual({ org_monthly_limit: 2 });
  });
});
