/**
 * /api/v1/federation/partners and /bindings: partners per preset with their defaults, the
 * pin rule, public keys only, https issuers; listing, reading, changing, suspending,
 * reactivating and deleting, each audited; a tenant admin's view (403 on changes, only the
 * partners open to it); bindings in the agent's organization against a partner open to it,
 * with an identifying condition, within the agent's and the caller's scopes; tenants
 * isolated; deleting a partner deletes its bindings.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, createTenant, getToken, json, send } from '../support/api.js';
import { claimsOfJwt, readWholeAuditLog } from '../support/load.js';

const ADMIN_SCOPES = ['agents:read', 'agents:write', 'tokens:read', 'audit:read'];
const AUDIENCE = 'https://idp.example.com';
const EC_KEY = { kty: 'EC', kid: 'cluster-1', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

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

const newTenant = (adminScopes = ADMIN_SCOPES) => createTenant(server, platform, { slug: `fed-${++slugs}-${Date.now().toString(36)}`, adminScopes });

const createPartner = (body: Record<string, unknown>, token = platform) => send(server, '/api/v1/federation/partners', json('POST', body, token));
const createBinding = (body: Record<string, unknown>, token: string) => send(server, '/api/v1/federation/bindings', json('POST', body, token));
const auditTypes = async (orgId = platformOrgId) => (await readWholeAuditLog(server, platform, `&orgId=${orgId}`)).map((event) => event.type);

async function customPartner(orgIds: string[], fields: Record<string, unknown> = {}): Promise<string> {
  const reply = await createPartner({ preset: 'custom', name: 'CI', issuer: 'https://ci.example.com', audiences: [AUDIENCE], orgIds, ...fields });
  expect(reply.status).toBe(201);
  return reply.body.partnerId;
}

describe('federation partners', () => {
  it('creates one per preset, the preset filling in what is left out', async () => {
    const buildkite = await createPartner({
      preset: 'buildkite',
      name: 'Acme on Buildkite',
      audiences: [AUDIENCE],
      requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }],
      orgIds: [platformOrgId],
    });
    expect(buildkite.status).toBe(201);
    expect(buildkite.body).toEqual({
      partnerId: expect.any(String),
      name: 'Acme on Buildkite',
      preset: 'buildkite',
      issuer: 'https://agent.buildkite.com',
      status: 'active',
      revision: 1,
      jwksUri: null,
      keys: null,
      audiences: [AUDIENCE],
      algorithms: ['RS256'],
      maxTokenAgeSeconds: 600,
      singleUseJti: true,
      requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }],
      orgIds: [platformOrgId],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const github = await createPartner({ preset: 'github', name: 'GitHub', audiences: [AUDIENCE], requiredClaims: [{ claim: 'repository_owner_id', op: 'eq', value: '42' }] });
    expect(github.body).toMatchObject({ issuer: 'https://token.actions.githubusercontent.com', algorithms: ['RS256'], maxTokenAgeSeconds: 600, singleUseJti: true, orgIds: [] });
    const gitlab = await createPartner({
      preset: 'gitlab',
      name: 'GitLab',
      issuer: 'https://gitlab.example.com',
      audiences: [AUDIENCE],
      requiredClaims: [{ claim: 'namespace_id', op: 'in', value: ['7', '8'] }],
    });
    expect(gitlab.body).toMatchObject({ issuer: 'https://gitlab.example.com', algorithms: ['RS256'], maxTokenAgeSeconds: 3600, singleUseJti: false });
    const circleci = await createPartner({ preset: 'circleci', name: 'CircleCI', issuer: 'https://oidc.circleci.com/org/0e3a', audiences: ['0e3a'] });
    expect(circleci.body).toMatchObject({ algorithms: ['RS256'], maxTokenAgeSeconds: 3600, singleUseJti: false, requiredClaims: [] });
    const kubernetes = await createPartner({ preset: 'kubernetes', name: 'Cluster', issuer: 'https://kubernetes.default.svc', audiences: [AUDIENCE], keys: { keys: [EC_KEY] } });
    expect(kubernetes.status).toBe(201);
    expect(kubernetes.body).toMatchObject({ algorithms: ['RS256', 'ES256'], keys: { keys: [EC_KEY] }, jwksUri: null });
    const spiffe = await createPartner({ preset: 'spiffe', name: 'SPIRE', issuer: 'https://spire.example.com', jwksUri: 'https://spire.example.com/keys', audiences: [AUDIENCE] });
    expect(spiffe.body).toMatchObject({ algorithms: ['RS256', 'ES256'], jwksUri: 'https://spire.example.com/keys' });
    const sentryagent = await createPartner({
      preset: 'sentryagent',
      name: 'Peer IdP',
      issuer: 'http://127.0.0.1:9000',
      audiences: [AUDIENCE],
      requiredClaims: [{ claim: 'org_id', op: 'eq', value: 'b4f1' }],
      maxTokenAgeSeconds: 120,
    });
    expect(sentryagent.body).toMatchObject({ algorithms: ['RS256', 'ES256', 'EdDSA'], maxTokenAgeSeconds: 120 });
    expect(await auditTypes()).toEqual(expect.arrayContaining(['federation.partner.created']));
  });

  it('refuses a partner breaking the rules (400)', async () => {
    const refusals = [
      // A shared issuer without the tenant pin.
      { preset: 'buildkite', name: 'No pin', audiences: [AUDIENCE] },
      { preset: 'buildkite', name: 'Wrong pin', audiences: [AUDIENCE], requiredClaims: [{ claim: 'pipeline_slug', op: 'eq', value: 'x' }] },
      // A private key part.
      { preset: 'kubernetes', name: 'Private', issuer: 'https://k8s.example.com', audiences: [AUDIENCE], keys: { keys: [{ ...EC_KEY, d: 'secret' }] } },
      { preset: 'custom', name: 'Symmetric', issuer: 'https://a.example.com', audiences: [AUDIENCE], keys: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } },
      // http off loopback, and other unsound issuers.
      { preset: 'custom', name: 'Plain http', issuer: 'http://ci.example.com', audiences: [AUDIENCE] },
      { preset: 'custom', name: 'Query', issuer: 'https://ci.example.com/?tenant=1', audiences: [AUDIENCE] },
      // No issuer where the preset names none; symmetric or no algorithms.
      { preset: 'gitlab', name: 'No issuer', audiences: [AUDIENCE], requiredClaims: [{ claim: 'namespace_id', op: 'eq', value: '7' }] },
      { preset: 'custom', name: 'HS256', issuer: 'https://a.example.com', audiences: [AUDIENCE], algorithms: ['HS256'] },
      { preset: 'custom', name: 'none', issuer: 'https://a.example.com', audiences: [AUDIENCE], algorithms: ['none'] },
      // Both key sources; an organization that does not exist.
      { preset: 'custom', name: 'Both', issuer: 'https://a.example.com', audiences: [AUDIENCE], jwksUri: 'https://a.example.com/k', keys: { keys: [EC_KEY] } },
      { preset: 'custom', name: 'Ghost org', issuer: 'https://a.example.com', audiences: [AUDIENCE], orgIds: ['00000000-0000-4000-8000-000000000001'] },
    ];
    for (const body of refusals) {
      const reply = await createPartner(body);
      expect({ name: body.name, status: reply.status, code: reply.body.code }).toEqual({ name: body.name, status: 400, code: 'VALIDATION_ERROR' });
    }
  });

  it('lists, shows, changes, suspends, reactivates and deletes one, each audited', async () => {
    const partnerId = await customPartner([platformOrgId]);
    const shown = await send(server, `/api/v1/federation/partners/${partnerId}`, bearer(platform));
    expect(shown.status).toBe(200);
    expect(shown.body.partnerId).toBe(partnerId);

    const ids: string[] = [];
    for (let cursor: string | null = ''; cursor !== null; ) {
      const page = await send(server, `/api/v1/federation/partners?limit=2${cursor ? `&cursor=${cursor}` : ''}`, bearer(platform));
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      ids.push(...page.body.data.map((partner: { partnerId: string }) => partner.partnerId));
      cursor = page.body.nextCursor;
    }
    expect(ids).toContain(partnerId);
    expect(ids).toEqual([...ids].sort());

    const patched = await send(server, `/api/v1/federation/partners/${partnerId}`, json('PATCH', { name: 'CI renamed', keys: { keys: [EC_KEY] }, maxTokenAgeSeconds: 300 }, platform));
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: 'CI renamed', keys: { keys: [EC_KEY] }, jwksUri: null, maxTokenAgeSeconds: 300, revision: 2 });
    // Setting the other key source clears the first.
    const switched = await send(server, `/api/v1/federation/partners/${partnerId}`, json('PATCH', { jwksUri: 'https://ci.example.com/jwks' }, platform));
    expect(switched.body).toMatchObject({ jwksUri: 'https://ci.example.com/jwks', keys: null });
    expect((await send(server, `/api/v1/federation/partners/${partnerId}`, json('PATCH', {}, platform))).status).toBe(400);
    expect((await send(server, `/api/v1/federation/partners/${partnerId}`, json('PATCH', { issuer: 'http://ci.example.com' }, platform))).status).toBe(400);

    const suspended = await send(server, `/api/v1/federation/partners/${partnerId}/suspend`, json('POST', undefined, platform));
    expect([suspended.status, suspended.body.status]).toEqual([200, 'suspended']);
    const reactivated = await send(server, `/api/v1/federation/partners/${partnerId}/reactivate`, json('POST', undefined, platform));
    expect([reactivated.status, reactivated.body.status]).toEqual([200, 'active']);
    const deleted = await send(server, `/api/v1/federation/partners/${partnerId}`, bearer(platform, { method: 'DELETE' }));
    expect([deleted.status, deleted.body.partnerId]).toEqual([200, partnerId]);
    expect((await send(server, `/api/v1/federation/partners/${partnerId}`, bearer(platform))).status).toBe(404);
    expect((await send(server, `/api/v1/federation/partners/${partnerId}/suspend`, json('POST', undefined, platform))).status).toBe(404);

    // Newest first.
    const events = (await readWholeAuditLog(server, platform, `&orgId=${platformOrgId}`)).filter((event) => JSON.stringify(event).includes(partnerId));
    expect(events.map((event) => event.type).reverse()).toEqual([
      'federation.partner.created',
      'federation.partner.updated',
      'federation.partner.updated',
      'federation.partner.suspended',
      'federation.partner.reactivated',
      'federation.partner.deleted',
    ]);
  });

  it("a tenant admin may not change partners (403) and sees only those open to its organization", async () => {
    const tenant = await newTenant();
    const open = await customPartner([tenant.orgId]);
    const closed = await customPartner([platformOrgId]);
    const create = await createPartner({ preset: 'custom', name: 'Mine', issuer: 'https://ci.example.com', audiences: [AUDIENCE] }, tenant.admin);
    expect(create.status).toBe(403);
    for (const [method, path] of [
      ['PATCH', `/api/v1/federation/partners/${open}`],
      ['DELETE', `/api/v1/federation/partners/${open}`],
      ['POST', `/api/v1/federation/partners/${open}/suspend`],
      ['POST', `/api/v1/federation/partners/${open}/reactivate`],
    ]) {
      const reply = await send(server, path, json(method, method === 'PATCH' ? { name: 'x' } : undefined, tenant.admin));
      expect({ method, path, status: reply.status }).toEqual({ method, path, status: 403 });
    }
    const list = await send(server, '/api/v1/federation/partners?limit=100', bearer(tenant.admin));
    expect(list.status).toBe(200);
    expect(list.body.data.map((partner: { partnerId: string }) => partner.partnerId)).toEqual([open]);
    expect((await send(server, `/api/v1/federation/partners/${open}`, bearer(tenant.admin))).status).toBe(200);
    expect((await send(server, `/api/v1/federation/partners/${closed}`, bearer(tenant.admin))).status).toBe(404);
  });
});

describe('federation bindings', () => {
  const conditions = [{ claim: 'sub', op: 'eq', value: 'repo:acme/app' }];

  it('binds an agent of the tenant to a partner open to it, and refuses what breaks the rules', async () => {
    const tenant = await newTenant();
    const agent = await createAgent(server, tenant.admin, { name: 'deployer', scopes: ['agents:read'] });
    const partnerId = await customPartner([tenant.orgId]);
    const closed = await customPartner([platformOrgId]);

    const created = await createBinding({ partnerId, agentId: agent.agentId, conditions, scopes: ['agents:read'], maxTtlSeconds: 900 }, tenant.admin);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      bindingId: expect.any(String),
      orgId: tenant.orgId,
      partnerId,
      agentId: agent.agentId,
      conditions,
      scopes: ['agents:read'],
      maxTtlSeconds: 900,
      createdAt: expect.any(String),
    });
    expect(await auditTypes(tenant.orgId)).toContain('federation.binding.created');

    const refusals: [string, Record<string, unknown>, string][] = [
      ['not open', { partnerId: closed, agentId: agent.agentId, conditions }, 'partnerId'],
      ['unknown partner', { partnerId: '00000000-0000-4000-8000-000000000002', agentId: agent.agentId, conditions }, 'partnerId'],
      ['no identifying claim', { partnerId, agentId: agent.agentId, conditions: [{ claim: 'ref', op: 'eq', value: 'main' }] }, 'conditions'],
      ['beyond the agent', { partnerId, agentId: agent.agentId, conditions, scopes: ['agents:write'] }, 'scopes'],
    ];
    for (const [what, body, field] of refusals) {
      const reply = await createBinding(body, tenant.admin);
      expect({ what, status: reply.status, field: reply.body.details?.field }).toEqual({ what, status: 400, field });
    }
    expect((await createBinding({ partnerId, agentId: agent.agentId, conditions: [] }, tenant.admin)).status).toBe(400);

    const read = await send(server, `/api/v1/federation/bindings/${created.body.bindingId}`, bearer(tenant.admin));
    expect(read.body).toEqual(created.body);
    const list = await send(server, `/api/v1/federation/bindings?agentId=${agent.agentId}&partnerId=${partnerId}`, bearer(tenant.admin));
    expect(list.body).toEqual({ data: [created.body], nextCursor: null });
    // The platform admin reads it with orgId.
    const listed = await send(server, `/api/v1/federation/bindings?orgId=${tenant.orgId}&limit=1`, bearer(platform));
    expect(listed.body.data.map((binding: { bindingId: string }) => binding.bindingId)).toEqual([created.body.bindingId]);
  });

  it('pages the bindings by the last id', async () => {
    const tenant = await newTenant();
    const agent = await createAgent(server, tenant.admin, { name: 'pager', scopes: ['agents:read'] });
    const partnerId = await customPartner([tenant.orgId]);
    const made: string[] = [];
    for (const value of ['a', 'b', 'c']) made.push((await createBinding({ partnerId, agentId: agent.agentId, conditions: [{ claim: 'sub', op: 'eq', value }] }, tenant.admin)).body.bindingId);
    const seen: string[] = [];
    for (let cursor: string | null = ''; cursor !== null; ) {
      const page = await send(server, `/api/v1/federation/bindings?limit=2${cursor ? `&cursor=${cursor}` : ''}`, bearer(tenant.admin));
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((binding: { bindingId: string }) => binding.bindingId));
      cursor = page.body.nextCursor;
    }
    expect(seen).toEqual([...made].sort());
  });

  it('applies the no-escalation rule (403) and keeps tenants apart (404)', async () => {
    const tenant = await newTenant();
    const other = await newTenant();
    const agent = await createAgent(server, tenant.admin, { name: 'powerful', scopes: ['agents:read', 'audit:read'] });
    const partnerId = await customPartner([tenant.orgId, other.orgId]);
    // A writer of the tenant lacking the agent's audit:read.
    const writer = await createAgent(server, tenant.admin, { name: 'writer', scopes: ['agents:read', 'agents:write'] });
    const writerToken = await getToken(server, writer.agentId, writer.clientSecret);
    expect((await createBinding({ partnerId, agentId: agent.agentId, conditions }, writerToken)).status).toBe(403);

    const binding = await createBinding({ partnerId, agentId: agent.agentId, conditions }, tenant.admin);
    expect(binding.status).toBe(201);
    const bindingId = binding.body.bindingId;
    expect((await send(server, `/api/v1/federation/bindings/${bindingId}`, bearer(writerToken, { method: 'DELETE' }))).status).toBe(403);

    // The other tenant: the agent is unknown to it, the binding not found, its list empty.
    expect((await createBinding({ partnerId, agentId: agent.agentId, conditions }, other.admin)).status).toBe(400);
    expect((await send(server, `/api/v1/federation/bindings/${bindingId}`, bearer(other.admin))).status).toBe(404);
    expect((await send(server, `/api/v1/federation/bindings/${bindingId}`, bearer(other.admin, { method: 'DELETE' }))).status).toBe(404);
    expect((await send(server, '/api/v1/federation/bindings', bearer(other.admin))).body).toEqual({ data: [], nextCursor: null });
    expect((await send(server, `/api/v1/federation/bindings?orgId=${tenant.orgId}`, bearer(other.admin))).status).toBe(404);

    const deleted = await send(server, `/api/v1/federation/bindings/${bindingId}`, bearer(tenant.admin, { method: 'DELETE' }));
    expect([deleted.status, deleted.body.bindingId]).toEqual([200, bindingId]);
    expect((await send(server, `/api/v1/federation/bindings/${bindingId}`, bearer(tenant.admin))).status).toBe(404);
    expect(await auditTypes(tenant.orgId)).toEqual(expect.arrayContaining(['federation.binding.created', 'federation.binding.deleted']));
  });

  it('deleting a partner deletes its bindings', async () => {
    const tenant = await newTenant();
    const agent = await createAgent(server, tenant.admin, { name: 'bound', scopes: ['agents:read'] });
    const partnerId = await customPartner([tenant.orgId]);
    const binding = await createBinding({ partnerId, agentId: agent.agentId, conditions }, tenant.admin);
    expect(binding.status).toBe(201);
    const deleted = await send(server, `/api/v1/federation/partners/${partnerId}`, bearer(platform, { method: 'DELETE' }));
    expect(deleted.status).toBe(200);
    expect((await send(server, `/api/v1/federation/bindings/${binding.body.bindingId}`, bearer(tenant.admin))).status).toBe(404);
    expect((await send(server, `/api/v1/federation/bindings?partnerId=${partnerId}`, bearer(tenant.admin))).body.data).toEqual([]);
  });
});
