/**
 * GET /api/v1/keys: the signing keys and their states for audit:read, newest first, the
 * active key, then after the operator's rotation a retired one, after a revocation a revoked
 * one; never key material, nor how a private key is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { adminToken, bearer, createAgent, createTenant, getToken, send } from '../support/api.js';
import { keyServiceOf, startTestServer, type TestServer } from '../support/test-server.js';

const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid as string;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let server: TestServer;
let admin: string;
beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server?.stop());

const listKeys = (token: string, query = '') => send(server, `/api/v1/keys${query}`, bearer(token));

describe('GET /api/v1/keys', () => {
  it('lists the active key, the one that signs tokens, with its dates and nothing else', async () => {
    const reply = await listKeys(admin);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      data: [{ kid: kidOf(admin), alg: 'RS256', createdAt: expect.stringMatching(ISO), retiredAt: null, revokedAt: null, state: 'active' }],
    });
  });

  it('shows a rotated-out key as retired and a revoked one as revoked, newest first, without key material', async () => {
    const keys = keyServiceOf(server);
    const original = kidOf(admin);
    const first = await keys.rotate(OPERATOR_CALLER, 'RS256');
    const second = await keys.rotate(OPERATOR_CALLER, 'RS256');
    await keys.revoke(OPERATOR_CALLER, original, 'RS256');
    // The admin's token was signed by the revoked key: it is inactive now.
    admin = await adminToken(server);
    expect(kidOf(admin)).toBe(second.kid);

    const reply = await listKeys(admin);
    expect(reply.status).toBe(200);
    expect(reply.body.data.map((key: { kid: string; state: string }) => [key.kid, key.state])).toEqual([
      [second.kid, 'active'],
      [first.kid, 'retired'],
      [original, 'revoked'],
    ]);
    const [, retired, revoked] = reply.body.data;
    expect(retired).toEqual({ kid: first.kid, alg: 'RS256', createdAt: expect.stringMatching(ISO), retiredAt: expect.stringMatching(ISO), revokedAt: null, state: 'retired' });
    expect(revoked).toMatchObject({ retiredAt: expect.stringMatching(ISO), revokedAt: expect.stringMatching(ISO), state: 'revoked' });
    for (const key of reply.body.data) expect(Object.keys(key).sort()).toEqual(['alg', 'createdAt', 'kid', 'retiredAt', 'revokedAt', 'state']);
    expect(reply.text).not.toMatch(/private|sealed|kek|"d"|"p"|"q"/i);
  });

  it('answers any caller holding audit:read; a tenant sees the keys that sign, not the revoked ones', async () => {
    const auditor = await createAgent(server, admin, { name: 'key-auditor', scopes: ['audit:read'] });
    const platformView = await listKeys(await getToken(server, auditor.agentId, auditor.clientSecret));
    expect(platformView.status).toBe(200);
    expect(platformView.body.data.map((key: { state: string }) => key.state)).toEqual(['active', 'retired', 'revoked']);

    const tenant = await createTenant(server, admin, { slug: 'key-tenant', adminScopes: ['audit:read'] });
    const tenantView = await listKeys(tenant.admin);
    expect(tenantView.status).toBe(200);
    expect(tenantView.body.data).toEqual(platformView.body.data.filter((key: { state: string }) => key.state !== 'revoked'));
    expect(tenantView.body.data[0]).toMatchObject({ kid: kidOf(admin), state: 'active' });
  });

  it('requires audit:read (403) and a token (401)', async () => {
    const reader = await createAgent(server, admin, { name: 'key-reader', scopes: ['agents:read'] });
    const withoutScope = await listKeys(await getToken(server, reader.agentId, reader.clientSecret));
    expect(withoutScope.status).toBe(403);
    expect(withoutScope.body).toEqual({ code: 'INSUFFICIENT_SCOPE', message: expect.stringContaining('audit:read') });
    const anonymous = await send(server, '/api/v1/keys');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('refuses query parameters: it takes none', async () => {
    const reply = await listKeys(admin, '?state=active');
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ code: 'VALIDATION_ERROR', message: 'The query is invalid: Unrecognized key: "state".', details: { issues: [{ path: '', message: 'Unrecognized key: "state"' }] } });
  });
});
