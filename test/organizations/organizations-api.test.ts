/**
 * /api/v1/orgs on one instance: creation (with its first admin), listing, reading,
 * changing; the limits (maxAgents, also under concurrent creations; monthlyTokens) and
 * usage; suspension and reactivation; decommissioning; admin:orgs staying in the platform
 * organization; tokens carrying org_id. (isolation.test.ts: tenants against each other;
 * multi-instance.test.ts: suspension and the monthly limit across two instances.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, getToken, json, send, type Reply } from '../support/api.js';
import { claimsOfJwt, readWholeAuditLog } from '../support/load.js';

const ADMIN_SCOPES = ['agents:read', 'agents:write', 'tokens:read', 'audit:read'];

let server: TestServer;
let platform: string;
let platformOrgId: string;
let slugs = 0;

beforeAll(async () => {
  server = await startTestServer();
  platform = await adminToken(server);
  platformOrgId = claimsOfJwt(platform).org_id;
});
afterAll(() => server?.stop());

interface CreatedOrg {
  readonly orgId: string;
  readonly reply: Reply;
  readonly adminId: string;
  readonly adminSecret: string;
  readonly admin: string;
}

async function createOrg(limits?: Record<string, number | null>, scopes = ADMIN_SCOPES): Promise<CreatedOrg> {
  const slug = `org-${++slugs}-${Date.now().toString(36)}`;
  const reply = await send(server, '/api/v1/orgs', json('POST', { slug, name: `Org ${slug}`, ...(limits && { limits }), admin: { name: 'admin', scopes } }, platform));
  expect(reply.status).toBe(201);
  const { clientId, clientSecret } = reply.body.admin.credential;
  return { orgId: reply.body.orgId, reply, adminId: clientId, adminSecret: clientSecret, admin: await getToken(server, clientId, clientSecret) };
}

const clientCredentials = (clientId: string, clientSecret: string) =>
  send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }));
const introspect = (caller: string, token: string) => send(server, '/api/v1/token/introspect', bearer(caller, form({ token })));
const auditTypes = async (orgId: string) => (await readWholeAuditLog(server, platform, `&orgId=${orgId}`)).map((event) => event.type);

describe('creating and reading organizations', () => {
  it('creates one with its first admin, whose secret is in that answer only', async () => {
    const created = await createOrg({ monthlyTokens: 1000, maxAgents: 10 });
    const { body, headers } = created.reply;
    expect(headers.get('cache-control')).toBe('no-store');
    expect(body).toMatchObject({
      orgId: expect.any(String),
      name: expect.stringMatching(/^Org /),
      status: 'active',
      isPlatform: false,
      limits: { monthlyTokens: 1000, maxAgents: 10, maxWebhookEndpoints: null },
      admin: { agentId: created.adminId, orgId: created.orgId, scopes: ADMIN_SCOPES, credential: { clientId: created.adminId, clientSecret: expect.any(String) } },
    });
    const read = await send(server, `/api/v1/orgs/${created.orgId}`, bearer(platform));
    expect(read.status).toBe(200);
    expect(read.text).not.toContain(created.adminSecret);
    const { admin: _admin, ...organization } = body;
    expect(read.body).toEqual(organization);
    expect(await auditTypes(created.orgId)).toEqual(expect.arrayContaining(['org.created', 'agent.created', 'credential.created', 'token.issued']));
    // The admin works in its organization at once.
    const agent = await createAgent(server, created.admin, { name: 'first-worker', scopes: ['agents:read'] });
    expect(agent.orgId).toBe(created.orgId);
  });

  it('creates one without an admin', async () => {
    const reply = await send(server, '/api/v1/orgs', json('POST', { slug: 'no-admin-org', name: 'No admin' }, platform));
    expect(reply.status).toBe(201);
    expect(reply.body.admin).toBeUndefined();
    expect(reply.body.limits).toEqual({ monthlyTokens: null, maxAgents: null, maxWebhookEndpoints: null });
  });

  it('refuses a taken slug (409), a bad slug or field (400), and admin:orgs for the admin (400)', async () => {
    const first = await send(server, '/api/v1/orgs', json('POST', { slug: 'taken-slug', name: 'One' }, platform));
    expect(first.status).toBe(201);
    const again = await send(server, '/api/v1/orgs', json('POST', { slug: 'taken-slug', name: 'Two' }, platform));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CONFLICT');
    expect((await send(server, '/api/v1/orgs', json('POST', { slug: 'platform', name: 'Again' }, platform))).status).toBe(409);
    for (const body of [
      { slug: 'Upper', name: 'x' },
      { slug: 'a', name: 'x' },
      { slug: 'ok-slug', name: 'x', extra: 1 },
      { slug: 'ok-slug', name: 'x', limits: { monthlyTokens: 0 } },
      { slug: 'ok-slug', name: 'x', limits: { maxAgents: -1 } },
      { slug: 'ok-slug', name: 'x', admin: { name: 'root', scopes: ['admin:orgs'] } },
    ]) {
      const reply = await send(server, '/api/v1/orgs', json('POST', body, platform));
      expect({ body, status: reply.status, code: reply.body.code }).toEqual({ body, status: 400, code: 'VALIDATION_ERROR' });
    }
    expect((await send(server, '/api/v1/orgs?status=active&limit=100', bearer(platform))).body.data.some((org: { slug: string }) => org.slug === 'ok-slug')).toBe(false);
  });

  it('lists organizations oldest first, the platform first, page by page', async () => {
    await createOrg();
    await createOrg();
    const all: { orgId: string; isPlatform: boolean }[] = [];
    let cursor: string | null = null;
    do {
      const page: Reply = await send(server, `/api/v1/orgs?limit=2${cursor ? `&cursor=${cursor}` : ''}`, bearer(platform));
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      all.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(all[0]).toMatchObject({ orgId: platformOrgId, isPlatform: true, slug: 'platform' });
    expect(new Set(all.map((org) => org.orgId)).size).toBe(all.length);
    expect(all.length).toBeGreaterThanOrEqual(4);
  });

  it('changes name, slug and limits, audited with each change; the platform keeps its slug', async () => {
    const { orgId } = await createOrg();
    const reply = await send(server, `/api/v1/orgs/${orgId}`, json('PATCH', { name: 'Renamed', limits: { maxAgents: 7, monthlyTokens: null } }, platform));
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ name: 'Renamed', limits: { maxAgents: 7, monthlyTokens: null } });
    const [updated] = (await readWholeAuditLog(server, platform, `&orgId=${orgId}&type=org.updated`));
    expect(updated.data).toMatchObject({ changed: ['name', 'limits.maxAgents'] });
    expect((await send(server, `/api/v1/orgs/${orgId}`, json('PATCH', {}, platform))).status).toBe(400);
    const platformSlug = await send(server, `/api/v1/orgs/${platformOrgId}`, json('PATCH', { slug: 'not-platform' }, platform));
    expect(platformSlug.status).toBe(409);
    expect((await send(server, `/api/v1/orgs/${platformOrgId}/suspend`, bearer(platform, { method: 'POST' }))).status).toBe(409);
    expect((await send(server, `/api/v1/orgs/${platformOrgId}`, bearer(platform, { method: 'DELETE' }))).status).toBe(409);
    expect((await send(server, '/api/v1/orgs/00000000-0000-4000-8000-000000000404', bearer(platform))).status).toBe(404);
  });

  it('tokens carry org_id, and introspection returns it', async () => {
    const { orgId, adminId, adminSecret, admin } = await createOrg();
    const token = await getToken(server, adminId, adminSecret);
    expect(claimsOfJwt(token).org_id).toBe(orgId);
    expect((await introspect(admin, token)).body).toMatchObject({ active: true, org_id: orgId, sub: adminId });
    expect((await introspect(platform, platform)).body).toMatchObject({ active: true, org_id: platformOrgId });
  });
});

describe('admin:orgs stays in the platform organization', () => {
  it('cannot be given to a non-platform agent: creation, change, or a registration policy (400 VALIDATION_ERROR)', async () => {
    const { orgId } = await createOrg();
    const create = await send(server, '/api/v1/agents', json('POST', { name: 'would-be-root', orgId, scopes: ['admin:orgs'] }, platform));
    expect(create.status).toBe(400);
    expect(create.body.code).toBe('VALIDATION_ERROR');
    const agent = await send(server, '/api/v1/agents', json('POST', { name: 'plain', orgId, scopes: [] }, platform));
    expect(agent.status).toBe(201);
    const patch = await send(server, `/api/v1/agents/${agent.body.agentId}`, json('PATCH', { scopes: ['admin:orgs'] }, platform));
    expect(patch.status).toBe(400);
    expect(patch.body.code).toBe('VALIDATION_ERROR');
    const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo/reg', orgId, scopes: ['admin:orgs'] }, platform));
    expect(policy.status).toBe(400);
    expect(policy.body.code).toBe('VALIDATION_ERROR');
    expect((await send(server, `/api/v1/agents/${agent.body.agentId}`, bearer(platform))).body.scopes).toEqual([]);
    // A platform agent may hold it.
    const platformAgent = await send(server, '/api/v1/agents', json('POST', { name: 'second-root', scopes: ['admin:orgs'] }, platform));
    expect(platformAgent.status).toBe(201);
    expect(platformAgent.body.orgId).toBe(platformOrgId);
  });

  it('a non-platform token never acts with it, even when the agent row holds it', async () => {
    const { orgId, admin } = await createOrg();
    const { agentId: adminId, clientSecret: adminSecret } = await createAgent(server, admin, { name: 'second-admin', scopes: ADMIN_SCOPES });
    // Only a direct write to the database can put it there (before the agent's first grant, which the server remembers).
    await server.deps.knex('agents').where({ id: adminId }).update({ scopes: [...ADMIN_SCOPES, 'admin:orgs'] });
    // The token may even say admin:orgs: a caller outside the platform organization never acts with it.
    const granted = await clientCredentials(adminId, adminSecret);
    expect(granted.status).toBe(200);
    expect(granted.body.scope.split(' ')).toContain('admin:orgs');
    const token: string = granted.body.access_token;
    expect((await send(server, '/api/v1/orgs', bearer(token))).status).toBe(403);
    expect((await send(server, '/api/v1/orgs', json('POST', { slug: 'escalated', name: 'x' }, token))).status).toBe(403);
    expect((await send(server, `/api/v1/orgs/${platformOrgId}`, bearer(token))).status).toBe(404);
    expect((await send(server, `/api/v1/orgs/${orgId}/suspend`, bearer(token, { method: 'POST' }))).status).toBe(403);
    expect((await send(server, `/api/v1/agents?orgId=${platformOrgId}`, bearer(token))).status).toBe(404);
    expect((await send(server, '/api/v1/agents', json('POST', { name: 'x', orgId: platformOrgId }, token))).status).toBe(404);
    expect((await introspect(token, platform)).body).toEqual({ active: false });
  });
});

describe('maxAgents', () => {
  it('refuses the next agent with 403 FORBIDDEN naming the limit; a decommissioned one frees its place', async () => {
    const { orgId, admin } = await createOrg({ maxAgents: 3 });
    const second = await createAgent(server, admin, { name: 'two' });
    await createAgent(server, admin, { name: 'three' });
    const refused = await send(server, '/api/v1/agents', json('POST', { name: 'four' }, admin));
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ code: 'FORBIDDEN', message: "The organization's limit of 3 agents has been reached." });
    // The platform admin is held to it too.
    expect((await send(server, '/api/v1/agents', json('POST', { name: 'four', orgId }, platform))).status).toBe(403);
    expect((await send(server, `/api/v1/orgs/${orgId}/usage`, bearer(admin))).body.agents).toEqual({ count: 3, limit: 3 });

    expect((await send(server, `/api/v1/agents/${second.agentId}`, bearer(admin, { method: 'DELETE' }))).status).toBe(200);
    expect((await send(server, '/api/v1/agents', json('POST', { name: 'four' }, admin))).status).toBe(201);
    expect((await send(server, '/api/v1/agents', json('POST', { name: 'five' }, admin))).status).toBe(403);
    // Raising the limit lets more in.
    expect((await send(server, `/api/v1/orgs/${orgId}`, json('PATCH', { limits: { maxAgents: 4 } }, platform))).status).toBe(200);
    expect((await send(server, '/api/v1/agents', json('POST', { name: 'five' }, admin))).status).toBe(201);
  });

  it('is never exceeded by concurrent creations', async () => {
    const { orgId, admin } = await createOrg({ maxAgents: 6 });
    const replies = await Promise.all(
      // Half by the organization's admin, half by the platform admin naming the organization.
      Array.from({ length: 30 }, (_, i) => send(server, '/api/v1/agents', json('POST', { name: `racer-${i}`, ...(i % 2 ? {} : { orgId }) }, i % 2 ? admin : platform))),
    );
    const statuses = replies.map((reply) => reply.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(5);
    expect(statuses.filter((status) => status === 403)).toHaveLength(25);
    const [{ count }] = await server.deps.knex('agents').where({ org_id: orgId }).count<{ count: string }[]>({ count: '*' });
    expect(Number(count)).toBe(6);
    expect((await auditTypes(orgId)).filter((type) => type === 'agent.created')).toHaveLength(6);
  });
});

describe('monthlyTokens and usage', () => {
  it("refuses grants past the organization's monthly limit; usage counts grants and refusals; another organization is unaffected", async () => {
    const limited = await createOrg({ monthlyTokens: 5 });
    const other = await createOrg({ monthlyTokens: 5 });
    // The admin's token (made by createOrg) is the first grant.
    const worker = await createAgent(server, limited.admin, { name: 'worker', scopes: ['agents:read'] });
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await clientCredentials(worker.agentId, worker.clientSecret));
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200, 200, 403, 403]);
    expect(replies[4].body).toEqual({ error: 'unauthorized_client', error_description: 'Organization monthly token limit of 5 has been reached.' });
    expect((await clientCredentials(limited.adminId, limited.adminSecret)).status).toBe(403);
    // The other organization still has its own five.
    for (let i = 0; i < 4; i++) expect((await clientCredentials(other.adminId, other.adminSecret)).status).toBe(200);

    const usage = await send(server, `/api/v1/orgs/${limited.orgId}/usage`, bearer(limited.admin));
    expect(usage.status).toBe(200);
    expect(usage.body).toEqual({
      orgId: limited.orgId,
      month: new Date().toISOString().slice(0, 7),
      tokens: {
        granted: 5,
        limit: 5,
        byAgent: [
          { agentId: worker.agentId, name: 'worker', granted: 4 },
          { agentId: limited.adminId, name: 'admin', granted: 1 },
        ],
      },
      refusals: { org_monthly_limit: 3 },
      agents: { count: 2, limit: null },
    });
    expect((await send(server, `/api/v1/orgs/${other.orgId}/usage`, bearer(platform))).body.tokens).toMatchObject({ granted: 5, limit: 5 });
    // Raising the limit lets grants through again.
    expect((await send(server, `/api/v1/orgs/${limited.orgId}`, json('PATCH', { limits: { monthlyTokens: 6 } }, platform))).status).toBe(200);
    expect((await clientCredentials(worker.agentId, worker.clientSecret)).status).toBe(200);
    expect((await clientCredentials(worker.agentId, worker.clientSecret)).status).toBe(403);
  });
});

describe('suspension', () => {
  it("stops the organization's tokens at once and its grants; reactivation restores new issuance, not the old tokens", async () => {
    const org = await createOrg();
    const worker = await createAgent(server, org.admin, { name: 'worker', scopes: ['agents:read'] });
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    expect((await introspect(platform, token)).body.active).toBe(true);

    const suspended = await send(server, `/api/v1/orgs/${org.orgId}/suspend`, bearer(platform, { method: 'POST' }));
    expect(suspended.status).toBe(200);
    expect(suspended.body.status).toBe('suspended');
    expect((await introspect(platform, token)).body).toEqual({ active: false });
    // The organization's admin is locked out with it.
    expect((await send(server, '/api/v1/agents', bearer(org.admin))).status).toBe(401);
    const refused = await clientCredentials(worker.agentId, worker.clientSecret);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'Organization is suspended.' });
    // Nothing new is made in it, not even by the platform.
    const agent = await send(server, '/api/v1/agents', json('POST', { name: 'late', orgId: org.orgId }, platform));
    expect(agent.status).toBe(409);
    expect((await send(server, `/api/v1/agents/${worker.agentId}/credentials`, bearer(platform, { method: 'POST' }))).status).toBe(409);
    const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo/late', agentId: worker.agentId }, platform));
    expect(policy.status).toBe(409);
    expect((await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo/late', orgId: org.orgId, scopes: [] }, platform))).status).toBe(409);
    // Suspending again changes nothing.
    expect((await send(server, `/api/v1/orgs/${org.orgId}/suspend`, bearer(platform, { method: 'POST' }))).body.status).toBe('suspended');
    const events = await readWholeAuditLog(server, platform, `&orgId=${org.orgId}&type=org.suspended`);
    expect(events).toHaveLength(1);
    expect(events[0].data).toEqual({ revokedTokens: 2 });

    const reactivated = await send(server, `/api/v1/orgs/${org.orgId}/reactivate`, bearer(platform, { method: 'POST' }));
    expect(reactivated.status).toBe(200);
    expect(reactivated.body.status).toBe('active');
    expect((await introspect(platform, token)).body).toEqual({ active: false });
    const fresh = await getToken(server, worker.agentId, worker.clientSecret);
    expect((await introspect(platform, fresh)).body).toMatchObject({ active: true, org_id: org.orgId });
    expect((await send(server, `/api/v1/orgs/${org.orgId}/usage`, bearer(platform))).body.refusals).toEqual({ org_inactive: 1 });
  });
});

describe('reactivation', () => {
  // A grant whose statement began before a suspension committed records its token after the
  // suspension revoked the others: here, the revocation mark taken off again by hand.
  const unrevoke = (token: string) => server.deps.knex('access_tokens').where({ jti: claimsOfJwt(token).jti }).update({ revoked_at: null });

  it('of an organization revokes a token that raced its suspension, rather than bringing it back', async () => {
    const org = await createOrg();
    const worker = await createAgent(server, org.admin, { name: 'racer', scopes: ['agents:read'] });
    const raced = await getToken(server, worker.agentId, worker.clientSecret);
    await send(server, `/api/v1/orgs/${org.orgId}/suspend`, bearer(platform, { method: 'POST' }));
    await unrevoke(raced);
    expect((await introspect(platform, raced)).body).toEqual({ active: false }); // the organization's status holds it while suspended
    await send(server, `/api/v1/orgs/${org.orgId}/reactivate`, bearer(platform, { method: 'POST' }));
    expect((await introspect(platform, raced)).body).toEqual({ active: false });
  });

  it('of an agent does the same', async () => {
    const org = await createOrg();
    const worker = await createAgent(server, org.admin, { name: 'racer', scopes: ['agents:read'] });
    const raced = await getToken(server, worker.agentId, worker.clientSecret);
    await send(server, `/api/v1/agents/${worker.agentId}/suspend`, bearer(org.admin, { method: 'POST' }));
    await unrevoke(raced);
    expect((await introspect(platform, raced)).body).toEqual({ active: false });
    await send(server, `/api/v1/agents/${worker.agentId}/reactivate`, bearer(org.admin, { method: 'POST' }));
    expect((await introspect(platform, raced)).body).toEqual({ active: false });
    expect((await introspect(platform, await getToken(server, worker.agentId, worker.clientSecret))).body.active).toBe(true);
  });

  it('takes every scope the organization\'s agents hold, as suspension does (no escalation)', async () => {
    const org = await createOrg(); // its admin holds agents:write, audit:read, …
    await send(server, `/api/v1/orgs/${org.orgId}/suspend`, bearer(platform, { method: 'POST' }));
    const narrow = await createAgent(server, platform, { name: 'orgs-only', scopes: ['admin:orgs', 'agents:read'] });
    const narrowToken = await getToken(server, narrow.agentId, narrow.clientSecret);
    for (const verb of ['reactivate', 'suspend']) {
      const refused = await send(server, `/api/v1/orgs/${org.orgId}/${verb}`, bearer(narrowToken, { method: 'POST' }));
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('FORBIDDEN');
    }
    expect((await send(server, `/api/v1/orgs/${org.orgId}`, bearer(platform))).body.status).toBe('suspended');
  });
});

describe('decommissioning', () => {
  it('decommissions every agent, revokes every credential and token; final and repeatable', async () => {
    const org = await createOrg();
    const worker = await createAgent(server, org.admin, { name: 'worker', scopes: ['agents:read'] });
    const token = await getToken(server, worker.agentId, worker.clientSecret);
    const reply = await send(server, `/api/v1/orgs/${org.orgId}`, bearer(platform, { method: 'DELETE' }));
    expect(reply.status).toBe(200);
    expect(reply.body.status).toBe('decommissioned');
    expect((await introspect(platform, token)).body).toEqual({ active: false });
    expect((await clientCredentials(worker.agentId, worker.clientSecret)).status).toBe(401);
    const agents = await send(server, `/api/v1/agents?orgId=${org.orgId}`, bearer(platform));
    expect(agents.body.data.map((agent: { status: string }) => agent.status)).toEqual(['decommissioned', 'decommissioned']);
    const credentials = await send(server, `/api/v1/agents/${worker.agentId}/credentials`, bearer(platform));
    expect(credentials.body.data.every((credential: { revokedAt: string | null }) => credential.revokedAt !== null)).toBe(true);
    const [event] = await readWholeAuditLog(server, platform, `&orgId=${org.orgId}&type=org.decommissioned`);
    expect(event.data).toEqual({ decommissionedAgents: 2, revokedCredentials: 2, revokedTokens: 2 });

    const again = await send(server, `/api/v1/orgs/${org.orgId}`, bearer(platform, { method: 'DELETE' }));
    expect(again.status).toBe(200);
    expect((await readWholeAuditLog(server, platform, `&orgId=${org.orgId}&type=org.decommissioned`))).toHaveLength(1);
    expect((await send(server, `/api/v1/orgs/${org.orgId}/reactivate`, bearer(platform, { method: 'POST' }))).status).toBe(409);
    expect((await send(server, `/api/v1/orgs/${org.orgId}/suspend`, bearer(platform, { method: 'POST' }))).status).toBe(409);
    expect((await send(server, `/api/v1/orgs/${org.orgId}`, json('PATCH', { name: 'zombie' }, platform))).status).toBe(409);
    expect((await send(server, '/api/v1/agents', json('POST', { name: 'zombie', orgId: org.orgId }, platform))).status).toBe(409);
    expect((await send(server, '/api/v1/orgs?status=decommissioned', bearer(platform))).body.data.map((o: { orgId: string }) => o.orgId)).toContain(org.orgId);
  });
});
