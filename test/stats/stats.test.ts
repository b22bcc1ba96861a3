/**
 * GET /api/v1/stats: an organization's token traffic. On a server whose clock is two days
 * ahead, audit rows written at chosen instants land in their hour (24 buckets, zero-filled)
 * and refusals group by type and reason, for the caller's organization only; on a server
 * at the real time, real grants, refusals and revocations show up.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminToken, bearer, createAgent, createTenant, form, getToken, send, type Tenant } from '../support/api.js';
import { testClock } from '../support/clock.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const HOUR = 3_600_000;
const TENANT_SCOPES = ['agents:read', 'agents:write', 'audit:read'];
const stats = (server: TestServer, token: string, query = '') => send(server, `/api/v1/stats${query}`, bearer(token));
const sumOf = (hours: { count: number }[]) => hours.reduce((sum, hour) => sum + hour.count, 0);

describe('GET /api/v1/stats, from audit rows at chosen instants', () => {
  // The current hour of the server's clock starts at CURRENT; its real-time rows (the
  // tenants' own grants) are a day before the window and count nowhere.
  const CURRENT = (Math.floor(Date.now() / HOUR) + 48) * HOUR;
  const clock = testClock(CURRENT + 30 * 60_000);
  let server: TestServer;
  let platform: string;
  let a: Tenant;
  let b: Tenant;

  const seed = (orgId: string, type: string, atMs: number, data: Record<string, unknown> = {}) =>
    server.deps.knex('audit_events').insert({ type, org_id: orgId, actor: 'test', data: JSON.stringify(data), created_at: new Date(atMs) });

  beforeAll(async () => {
    server = await startTestServer({ clock });
    platform = await adminToken(server);
    a = await createTenant(server, platform, { slug: 'stats-a', adminScopes: TENANT_SCOPES });
    b = await createTenant(server, platform, { slug: 'stats-b', adminScopes: TENANT_SCOPES });
    const since = CURRENT - 23 * HOUR;
    for (const at of [CURRENT + 5_000, CURRENT - HOUR + 1, CURRENT - 1, since, since + HOUR - 1, since - 1, CURRENT + HOUR]) await seed(a.orgId, 'token.issued', at);
    await seed(b.orgId, 'token.issued', CURRENT - 2 * HOUR);
    const refusals: [string, string, number][] = [
      ['oidc.exchange.refused', 'unknown agent', CURRENT - 3 * HOUR],
      ['oidc.exchange.refused', 'unknown agent', CURRENT + 60_000],
      ['oidc.exchange.refused', 'jti already used (replay)', since],
      ['federation.exchange.refused', 'agent is suspended', CURRENT - 10 * HOUR],
      ['oidc.register.refused', 'no registration policy', CURRENT - 5 * HOUR],
      ['oidc.exchange.refused', 'unknown agent', since - 1], // before the window
    ];
    for (const [type, reason, at] of refusals) await seed(a.orgId, type, at, { reason, repository: 'octo/repo' });
    await seed(a.orgId, 'token.revoked', CURRENT - HOUR, { reason: 'not a refusal' });
  });
  afterAll(() => server?.stop());

  it('counts token.issued per UTC hour: 24 buckets, oldest first, the current hour last, zero-filled', async () => {
    const reply = await stats(server, a.admin);
    expect(reply.status).toBe(200);
    const expected = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(CURRENT - (23 - i) * HOUR).toISOString(), count: 0 }));
    expected[23].count = 1; // CURRENT + 5 s
    expected[22].count = 2; // the first and the last millisecond of the hour before
    expected[0].count = 2; // the window's first and its first hour's last millisecond
    expect(reply.body).toMatchObject({ orgId: a.orgId, since: new Date(CURRENT - 23 * HOUR).toISOString(), tokensIssuedPerHour: expected });
    expect(Date.parse(reply.body.generatedAt)).toBeGreaterThanOrEqual(CURRENT + 30 * 60_000);
    expect(Date.parse(reply.body.generatedAt)).toBeLessThan(CURRENT + HOUR);
  });

  it('groups the window\'s refusals by event type and reason, most frequent first', async () => {
    const reply = await stats(server, a.admin);
    expect(reply.body.refusalsByReason).toEqual([
      { type: 'oidc.exchange.refused', reason: 'unknown agent', count: 2 },
      { type: 'federation.exchange.refused', reason: 'agent is suspended', count: 1 },
      { type: 'oidc.exchange.refused', reason: 'jti already used (replay)', count: 1 },
      { type: 'oidc.register.refused', reason: 'no registration policy', count: 1 },
    ]);
  });

  it('counts a summary of unverified refusals as the refusals it stands for, in the platform organization', async () => {
    const platformOrgId = (await stats(server, platform)).body.orgId;
    await seed(platformOrgId, 'oidc.unverified_refused', CURRENT - 4 * HOUR, { endpoint: 'exchange', reason: 'signature', count: 7, minute: new Date(CURRENT - 4 * HOUR).toISOString() });
    await seed(platformOrgId, 'oidc.unverified_refused', CURRENT - 3 * HOUR, { endpoint: 'register', reason: 'signature', count: 2, minute: new Date(CURRENT - 3 * HOUR).toISOString() });
    const reply = await stats(server, platform);
    expect(reply.status).toBe(200);
    expect(reply.body.refusalsByReason).toEqual([{ type: 'oidc.unverified_refused', reason: 'signature', count: 9 }]);
    expect((await stats(server, a.admin)).body.refusalsByReason).not.toContainEqual(expect.objectContaining({ type: 'oidc.unverified_refused' }));
  });

  it('shows a tenant only its own organization, and refuses naming another as the audit list does', async () => {
    const own = await stats(server, b.admin);
    expect(own.status).toBe(200);
    expect(own.body.orgId).toBe(b.orgId);
    expect(sumOf(own.body.tokensIssuedPerHour)).toBe(1);
    expect(own.body.tokensIssuedPerHour[21]).toEqual({ hour: new Date(CURRENT - 2 * HOUR).toISOString(), count: 1 });
    expect(own.body.refusalsByReason).toEqual([]);

    const other = await stats(server, b.admin, `?orgId=${a.orgId}`);
    const otherAudit = await send(server, `/api/v1/audit?orgId=${a.orgId}`, bearer(b.admin));
    expect(other.status).toBe(404);
    expect(other.body).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining('Organization') });
    expect(other.body).toEqual(otherAudit.body);
  });

  it('lets a platform caller holding admin:orgs name any organization', async () => {
    const reply = await stats(server, platform, `?orgId=${a.orgId.toUpperCase()}`);
    expect(reply.status).toBe(200);
    expect(reply.body.orgId).toBe(a.orgId);
    expect(sumOf(reply.body.tokensIssuedPerHour)).toBe(5);
    expect(reply.body.refusalsByReason).toHaveLength(4);
  });

  it('refuses unknown and malformed query parameters with VALIDATION_ERROR', async () => {
    const unknown = await stats(server, a.admin, '?hours=48');
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({ code: 'VALIDATION_ERROR', message: 'The query is invalid: Unrecognized key: "hours".', details: { issues: [{ path: '', message: 'Unrecognized key: "hours"' }] } });
    const malformed = await stats(server, a.admin, '?orgId=stats-a');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('orgId') });
  });
});

describe('GET /api/v1/stats, from real traffic', () => {
  let server: TestServer;
  let platform: string;
  let tenant: Tenant;

  beforeAll(async () => {
    server = await startTestServer();
    platform = await adminToken(server);
    tenant = await createTenant(server, platform, { slug: 'stats-live', adminScopes: TENANT_SCOPES });
  });
  afterAll(() => server?.stop());

  it('counts each grant in the hours, and the live tokens until one is revoked', async () => {
    const before = (await stats(server, tenant.admin)).body;
    expect(before.liveTokens).toBe(1); // its admin's, made with the organization
    const worker = await createAgent(server, tenant.admin, { name: 'stats-worker', scopes: ['agents:read'] });
    const first = await getToken(server, worker.agentId, worker.clientSecret);
    await getToken(server, worker.agentId, worker.clientSecret);

    const during = (await stats(server, tenant.admin)).body;
    expect(sumOf(during.tokensIssuedPerHour)).toBe(sumOf(before.tokensIssuedPerHour) + 2);
    expect(during.liveTokens).toBe(before.liveTokens + 2);

    expect((await send(server, '/api/v1/token/revoke', bearer(first, form({ token: first })))).status).toBe(200);
    const after = (await stats(server, tenant.admin)).body;
    expect(after.liveTokens).toBe(before.liveTokens + 1);
    expect(sumOf(after.tokensIssuedPerHour)).toBe(sumOf(during.tokensIssuedPerHour));
  });

  it('includes this month\'s refused grants, counted a moment ago and not yet stored', async () => {
    const worker = await createAgent(server, tenant.admin, { name: 'stats-greedy', scopes: ['agents:read'] });
    for (let i = 0; i < 2; i += 1) {
      const refused = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: worker.agentId, client_secret: worker.clientSecret, scope: 'agents:write' }));
      expect(refused.status).toBe(400);
    }
    const reply = await stats(server, tenant.admin);
    expect(reply.body.month).toBe(new Date().toISOString().slice(0, 7));
    expect(reply.body.monthlyRefusals).toEqual([{ reason: 'invalid_scope', count: 2 }]);
    expect((await stats(server, platform)).body.monthlyRefusals).toEqual([]);
  });

  it('requires audit:read (403) and a token (401)', async () => {
    const reader = await createAgent(server, tenant.admin, { name: 'stats-reader', scopes: ['agents:read'] });
    const withoutScope = await stats(server, await getToken(server, reader.agentId, reader.clientSecret));
    expect(withoutScope.status).toBe(403);
    expect(withoutScope.body).toEqual({ code: 'INSUFFICIENT_SCOPE', message: expect.stringContaining('audit:read') });
    const anonymous = await send(server, '/api/v1/stats');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
