/**
 * Two organizations, each with its own admin, over the API: neither can see or touch the
 * other's agents, credentials, trust policies, tokens or audit events, on every route. A
 * refused write changes nothing and leaves no audit row (the whole security state is
 * compared before and after). A platform caller holding admin:orgs acts in both.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, createTenant, form, getToken, json, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { readWholeAuditLog } from '../support/load.js';

const ADMIN_SCOPES = ['agents:read', 'agents:write', 'tokens:read', 'audit:read'];

interface Tenant {
  readonly orgId: string;
  /** The organization's admin's token. */
  readonly admin: string;
  readonly adminAgentId: string;
  /** An ordinary agent of the organization, with a credential, a trust policy and a live token. */
  readonly agent: AgentWithSecret;
  readonly policyId: string;
  readonly token: string;
}

let server: TestServer;
let platform: string;
let a: Tenant;
let b: Tenant;

async function tenantWithAgent(slug: string): Promise<Tenant> {
  const { orgId, admin, adminAgentId } = await createTenant(server, platform, { slug, adminScopes: ADMIN_SCOPES });
  const agent = await createAgent(server, admin, { name: `${slug}-worker`, scopes: ['agents:read'] });
  expect(agent.orgId).toBe(orgId);
  const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: `${slug}/repo`, agentId: agent.agentId }, admin));
  expect(policy.status).toBe(201);
  const token = await getToken(server, agent.agentId, agent.clientSecret);
  return { orgId, admin, adminAgentId, agent, policyId: policy.body.id, token };
}

/** Everything a request could change: compared whole before and after each refused one. */
async function securityState(): Promise<unknown> {
  const knex = server.deps.knex;
  const [organizations, agents, credentials, policies, tokens, events, quotas] = await Promise.all([
    knex('organizations').orderBy('id'),
    knex('agents').orderBy('id'),
    knex('credentials').orderBy('id'),
    knex('trust_policies').orderBy('id'),
    knex('access_tokens').orderBy('jti'),
    knex('audit_events').orderBy('id').select('id', 'type', 'org_id', 'agent_id'),
    knex('org_token_quotas').orderBy(['org_id', 'month']),
  ]);
  return JSON.parse(JSON.stringify({ organizations, agents, credentials, policies, tokens, events, quotas }));
}

const introspect = (caller: string, token: string) => send(server, '/api/v1/token/introspect', bearer(caller, form({ token })));

beforeAll(async () => {
  server = await startTestServer();
  platform = await adminToken(server);
  a = await tenantWithAgent('tenant-a');
  b = await tenantWithAgent('tenant-b');
});
afterAll(() => server?.stop());

interface Attempt {
  readonly name: string;
  readonly request: (actor: Tenant, other: Tenant) => Promise<Reply>;
  readonly status: number;
  /** Checks of the body beyond the status. */
  readonly body?: (reply: Reply, actor: Tenant, other: Tenant) => void;
}

const notFound = (what: string) => (reply: Reply) => expect(reply.body).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining(what) });

// Every route that names something of another organization, as that organization's neighbour's admin.
const ATTEMPTS: Attempt[] = [
  { name: 'GET agent', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}`, bearer(me.admin)), status: 404, body: notFound('Agent') },
  { name: 'PATCH agent', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}`, json('PATCH', { name: 'taken-over' }, me.admin)), status: 404, body: notFound('Agent') },
  { name: 'PATCH agent scopes', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}`, json('PATCH', { scopes: [] }, me.admin)), status: 404, body: notFound('Agent') },
  { name: 'suspend agent', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}/suspend`, bearer(me.admin, { method: 'POST' })), status: 404, body: notFound('Agent') },
  { name: 'reactivate agent', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}/reactivate`, bearer(me.admin, { method: 'POST' })), status: 404, body: notFound('Agent') },
  { name: 'delete agent', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}`, bearer(me.admin, { method: 'DELETE' })), status: 404, body: notFound('Agent') },
  { name: 'suspend the other admin', request: (me, it) => send(server, `/api/v1/agents/${it.adminAgentId}/suspend`, bearer(me.admin, { method: 'POST' })), status: 404, body: notFound('Agent') },
  { name: 'create credential', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}/credentials`, bearer(me.admin, { method: 'POST' })), status: 404, body: notFound('Agent') },
  { name: 'list credentials', request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}/credentials`, bearer(me.admin)), status: 404, body: notFound('Agent') },
  {
    name: 'revoke credential',
    request: (me, it) => send(server, `/api/v1/agents/${it.agent.agentId}/credentials/${it.agent.credentialId}`, bearer(me.admin, { method: 'DELETE' })),
    status: 404,
    body: notFound('Agent'),
  },
  {
    name: "revoke the other's credential through one's own agent",
    request: (me, it) => send(server, `/api/v1/agents/${me.agent.agentId}/credentials/${it.agent.credentialId}`, bearer(me.admin, { method: 'DELETE' })),
    status: 404,
    body: notFound('Credential'),
  },
  { name: 'list agents ?orgId=other', request: (me, it) => send(server, `/api/v1/agents?orgId=${it.orgId}`, bearer(me.admin)), status: 404, body: notFound('Organization') },
  { name: 'create agent with orgId=other', request: (me, it) => send(server, '/api/v1/agents', json('POST', { name: 'planted', orgId: it.orgId }, me.admin)), status: 404, body: notFound('Organization') },
  {
    name: "create trust policy for the other's agent",
    request: (me, it) => send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'evil/repo', agentId: it.agent.agentId }, me.admin)),
    status: 400,
    body: (reply) => expect(reply.body).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('agentId does not name an existing agent') }),
  },
  {
    name: 'create registration policy with orgId=other',
    request: (me, it) => send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'evil/repo', orgId: it.orgId, scopes: [] }, me.admin)),
    status: 404,
    body: notFound('Organization'),
  },
  { name: 'list trust policies ?orgId=other', request: (me, it) => send(server, `/api/v1/oidc/trust-policies?orgId=${it.orgId}`, bearer(me.admin)), status: 404, body: notFound('Organization') },
  {
    name: 'list trust policies ?agentId=other agent',
    request: (me, it) => send(server, `/api/v1/oidc/trust-policies?agentId=${it.agent.agentId}`, bearer(me.admin)),
    status: 200,
    body: (reply) => expect(reply.body.data).toEqual([]),
  },
  { name: 'GET trust policy', request: (me, it) => send(server, `/api/v1/oidc/trust-policies/${it.policyId}`, bearer(me.admin)), status: 404, body: notFound('Trust policy') },
  { name: 'DELETE trust policy', request: (me, it) => send(server, `/api/v1/oidc/trust-policies/${it.policyId}`, bearer(me.admin, { method: 'DELETE' })), status: 404, body: notFound('Trust policy') },
  { name: 'introspect foreign token', request: (me, it) => introspect(me.admin, it.token), status: 200, body: (reply) => expect(reply.body).toEqual({ active: false }) },
  {
    name: 'revoke foreign token',
    request: (me, it) => send(server, '/api/v1/token/revoke', bearer(me.admin, form({ token: it.token }))),
    status: 200,
  },
  {
    name: "revoke the other admin's token",
    request: (me, it) => send(server, '/api/v1/token/revoke', bearer(me.admin, form({ token: it.admin }))),
    status: 200,
  },
  { name: 'audit ?orgId=other', request: (me, it) => send(server, `/api/v1/audit?orgId=${it.orgId}`, bearer(me.admin)), status: 404, body: notFound('Organization') },
  {
    name: 'audit ?agentId=other agent',
    request: (me, it) => send(server, `/api/v1/audit?agentId=${it.agent.agentId}`, bearer(me.admin)),
    status: 200,
    body: (reply) => expect(reply.body.data).toEqual([]),
  },
  { name: 'audit verify', request: (me) => send(server, '/api/v1/audit/verify', bearer(me.admin)), status: 403 },
  { name: 'list orgs', request: (me) => send(server, '/api/v1/orgs', bearer(me.admin)), status: 403 },
  { name: 'GET other org', request: (me, it) => send(server, `/api/v1/orgs/${it.orgId}`, bearer(me.admin)), status: 404, body: notFound('Organization') },
  { name: 'usage of other org', request: (me, it) => send(server, `/api/v1/orgs/${it.orgId}/usage`, bearer(me.admin)), status: 404, body: notFound('Organization') },
  { name: 'PATCH other org', request: (me, it) => send(server, `/api/v1/orgs/${it.orgId}`, json('PATCH', { name: 'mine' }, me.admin)), status: 403 },
  { name: 'PATCH own org', request: (me) => send(server, `/api/v1/orgs/${me.orgId}`, json('PATCH', { limits: { maxAgents: null } }, me.admin)), status: 403 },
  { name: 'suspend other org', request: (me, it) => send(server, `/api/v1/orgs/${it.orgId}/suspend`, bearer(me.admin, { method: 'POST' })), status: 403 },
  { name: 'reactivate other org', request: (me, it) => send(server, `/api/v1/orgs/${it.orgId}/reactivate`, bearer(me.admin, { method: 'POST' })), status: 403 },
  { name: 'decommission other org', request: (me, it) => send(server, `/api/v1/orgs/${it.orgId}`, bearer(me.admin, { method: 'DELETE' })), status: 403 },
  { name: 'create org', request: (me) => send(server, '/api/v1/orgs', json('POST', { slug: 'sneaky', name: 'Sneaky' }, me.admin)), status: 403 },
];

describe.each([
  ['A against B', () => [a, b] as const],
  ['B against A', () => [b, a] as const],
])('organization isolation: %s', (_label, pair) => {
  it.each(ATTEMPTS.map((attempt) => [attempt.name, attempt] as const))('%s: refused or blind, and nothing changes', async (_name, attempt) => {
    const [me, other] = pair();
    const before = await securityState();
    const reply = await attempt.request(me, other);
    expect({ status: reply.status, text: reply.text }).toEqual({ status: attempt.status, text: expect.any(String) });
    attempt.body?.(reply, me, other);
    expect(await securityState()).toEqual(before);
    // The other organization's things are still there and alive.
    expect((await introspect(other.admin, other.token)).body).toMatchObject({ active: true, org_id: other.orgId });
    expect((await send(server, `/api/v1/agents/${other.agent.agentId}`, bearer(other.admin))).body).toMatchObject({ status: 'active', orgId: other.orgId });
  });

  it('lists only its own agents, policies and events; reads its own organization and usage', async () => {
    const [me, other] = pair();
    const agents = await send(server, '/api/v1/agents?limit=100', bearer(me.admin));
    expect(agents.status).toBe(200);
    expect(agents.body.data.map((agent: { orgId: string }) => agent.orgId)).toEqual(agents.body.data.map(() => me.orgId));
    expect(agents.body.data.map((agent: { agentId: string }) => agent.agentId).sort()).toEqual([me.adminAgentId, me.agent.agentId].sort());
    const ownList = await send(server, `/api/v1/agents?orgId=${me.orgId}`, bearer(me.admin));
    expect(ownList.status).toBe(200);

    const policies = await send(server, '/api/v1/oidc/trust-policies', bearer(me.admin));
    expect(policies.status).toBe(200);
    expect(policies.body.data.map((policy: { id: string }) => policy.id)).toEqual([me.policyId]);

    const events = await readWholeAuditLog(server, me.admin);
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((event) => event.orgId))).toEqual(new Set([me.orgId]));
    expect(events.some((event) => event.agentId === other.agent.agentId)).toBe(false);

    const own = await send(server, `/api/v1/orgs/${me.orgId}`, bearer(me.admin));
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ orgId: me.orgId, isPlatform: false, status: 'active' });
    const usage = await send(server, `/api/v1/orgs/${me.orgId}/usage`, bearer(me.admin));
    expect(usage.status).toBe(200);
    expect(usage.body).toMatchObject({ orgId: me.orgId, agents: { count: 2 } });
  });

  it('introspects its own tokens with org_id', async () => {
    const [me] = pair();
    expect((await introspect(me.admin, me.token)).body).toMatchObject({ active: true, sub: me.agent.agentId, org_id: me.orgId });
  });
});

describe('an agent of the organization without agents:read', () => {
  it('cannot read its own organization (403), and another one is 404 all the same', async () => {
    const agent = await createAgent(server, a.admin, { name: 'token-reader', scopes: ['tokens:read'] });
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    expect((await send(server, `/api/v1/orgs/${a.orgId}`, bearer(token))).status).toBe(403);
    expect((await send(server, `/api/v1/orgs/${b.orgId}`, bearer(token))).status).toBe(404);
  });
});

describe('a platform agent without admin:orgs', () => {
  it('is confined to the platform organization like any tenant', async () => {
    const agent = await createAgent(server, platform, { name: 'platform-operator', scopes: ADMIN_SCOPES });
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    const before = await securityState();
    expect((await send(server, `/api/v1/agents/${a.agent.agentId}`, bearer(token))).status).toBe(404);
    expect((await send(server, `/api/v1/agents?orgId=${a.orgId}`, bearer(token))).status).toBe(404);
    expect((await send(server, `/api/v1/agents/${a.agent.agentId}/suspend`, bearer(token, { method: 'POST' }))).status).toBe(404);
    expect((await send(server, `/api/v1/oidc/trust-policies/${a.policyId}`, bearer(token, { method: 'DELETE' }))).status).toBe(404);
    expect((await introspect(token, a.token)).body).toEqual({ active: false });
    expect((await send(server, '/api/v1/token/revoke', bearer(token, form({ token: a.token })))).status).toBe(200);
    expect((await send(server, `/api/v1/audit?orgId=${a.orgId}`, bearer(token))).status).toBe(404);
    expect((await send(server, '/api/v1/orgs', bearer(token))).status).toBe(403);
    expect((await send(server, `/api/v1/orgs/${a.orgId}`, bearer(token))).status).toBe(404);
    expect(await securityState()).toEqual(before);
    expect((await introspect(a.admin, a.token)).body.active).toBe(true);
  });
});

describe('the platform admin (admin:orgs)', () => {
  it('acts in both organizations: lists with ?orgId, creates with body orgId, reads their tokens and events', async () => {
    for (const tenant of [a, b]) {
      const agents = await send(server, `/api/v1/agents?orgId=${tenant.orgId}&limit=100`, bearer(platform));
      expect(agents.status).toBe(200);
      expect(agents.body.data.map((agent: { agentId: string }) => agent.agentId)).toEqual(expect.arrayContaining([tenant.agent.agentId, tenant.adminAgentId]));
      expect(agents.body.data.every((agent: { orgId: string }) => agent.orgId === tenant.orgId)).toBe(true);

      const created = await send(server, '/api/v1/agents', json('POST', { name: 'placed-by-platform', orgId: tenant.orgId, scopes: ['agents:read'] }, platform));
      expect(created.status).toBe(201);
      expect(created.body.orgId).toBe(tenant.orgId);
      const credential = await send(server, `/api/v1/agents/${created.body.agentId}/credentials`, bearer(platform, { method: 'POST' }));
      expect(credential.status).toBe(201);
      expect(credential.body.orgId).toBe(tenant.orgId);

      const registration = await send(
        server,
        '/api/v1/oidc/trust-policies',
        json('POST', { provider: 'github', repository: 'platform/registers', orgId: tenant.orgId, scopes: ['agents:read'] }, platform),
      );
      expect(registration.status).toBe(201);
      expect(registration.body.orgId).toBe(tenant.orgId);
      const policies = await send(server, `/api/v1/oidc/trust-policies?orgId=${tenant.orgId}`, bearer(platform));
      expect(policies.body.data.map((policy: { id: string }) => policy.id)).toEqual(expect.arrayContaining([tenant.policyId, registration.body.id]));
      expect((await send(server, `/api/v1/oidc/trust-policies/${tenant.policyId}`, bearer(platform))).status).toBe(200);
      expect((await send(server, `/api/v1/agents/${tenant.agent.agentId}/credentials`, bearer(platform))).status).toBe(200);

      expect((await introspect(platform, tenant.token)).body).toMatchObject({ active: true, org_id: tenant.orgId });
      const events = await readWholeAuditLog(server, platform, `&orgId=${tenant.orgId}`);
      expect(events.length).toBeGreaterThan(0);
      expect(events.every((event) => event.orgId === tenant.orgId)).toBe(true);
      expect(events.map((event) => event.type)).toEqual(expect.arrayContaining(['org.created', 'agent.created', 'trust_policy.created', 'token.issued']));
      expect((await send(server, `/api/v1/orgs/${tenant.orgId}/usage`, bearer(platform))).status).toBe(200);
    }
    // The platform's own log has none of the tenants' events.
    const own = await readWholeAuditLog(server, platform);
    expect(own.some((event) => event.orgId === a.orgId || event.orgId === b.orgId)).toBe(false);
    const verify = await send(server, '/api/v1/audit/verify', bearer(platform));
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ valid: true });
  });

  it('revokes a tenant token, which then is inactive', async () => {
    const token = await getToken(server, b.agent.agentId, b.agent.clientSecret);
    expect((await send(server, '/api/v1/token/revoke', bearer(platform, form({ token })))).status).toBe(200);
    expect((await introspect(b.admin, token)).body).toEqual({ active: false });
  });
});
