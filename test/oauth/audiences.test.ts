/**
 * `aud` (issue 14, section 2): every token names its audience, PUBLIC_URL by default or a
 * service of TOKEN_AUDIENCES asked for with RFC 8707's `resource`; this server's Bearer
 * endpoints take only tokens made for it; any resource server can verify a token the way
 * the README shows (docs/examples/verify-token.mjs, run here as written).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { adminToken, bearer, createAgent, form, send, type AgentWithSecret } from '../support/api.js';
import { startReachableTestServer } from '../support/reachable-server.js';
import type { TestServer } from '../support/test-server.js';
import { createPolicy, exchange, mintIdToken, startHarness, type Harness } from '../github/exchange-harness.js';

const API = 'https://api.example.test';
const OTHER = 'https://reports.example.test';

let server: TestServer;
let admin: string;
let agent: AgentWithSecret;
beforeAll(async () => {
  server = await startReachableTestServer({ TOKEN_AUDIENCES: ` ${API}/, ${OTHER} ` });
  admin = await adminToken(server);
  agent = await createAgent(server, admin, { scopes: ['agents:read', 'tokens:read'] });
});
afterAll(() => server.stop());

const grant = (params: Record<string, string> = {}) =>
  send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret, ...params }));

describe('the aud of issued tokens', () => {
  it('is PUBLIC_URL by default, and PUBLIC_URL may be asked for by name', async () => {
    expect(decodeJwt((await grant()).body.access_token).aud).toBe(server.config.publicUrl);
    expect(decodeJwt((await grant({ resource: server.config.publicUrl })).body.access_token).aud).toBe(server.config.publicUrl);
  });

  it('is the resource asked for when it is one of TOKEN_AUDIENCES (listed with spaces and a trailing slash)', async () => {
    expect(decodeJwt((await grant({ resource: API })).body.access_token).aud).toBe(API);
    expect(decodeJwt((await grant({ resource: OTHER })).body.access_token).aud).toBe(OTHER);
  });

  it('answers invalid_target for any other resource, and invalid_request for two', async () => {
    for (const resource of ['https://evil.example', `${API}/x`, 'https://API.example.test', '']) {
      const reply = await grant({ resource });
      expect({ status: reply.status, error: reply.body.error }).toEqual({ status: 400, error: 'invalid_target' });
    }
    const body = `grant_type=client_credentials&client_id=${agent.agentId}&client_secret=${agent.clientSecret}&resource=${encodeURIComponent(API)}&resource=${encodeURIComponent(OTHER)}`;
    const repeated = await send(server, '/api/v1/token', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
    expect({ status: repeated.status, error: repeated.body.error }).toEqual({ status: 400, error: 'invalid_request' });
  });
});

describe("this server's own Bearer endpoints", () => {
  it('refuse a token made for another service, which introspection still describes and revocation still revokes', async () => {
    const downstream = (await grant({ resource: API })).body.access_token;
    expect((await send(server, '/api/v1/agents', bearer(downstream))).status).toBe(401);
    expect((await send(server, '/api/v1/token/introspect', bearer(downstream, form({ token: downstream })))).status).toBe(401);
    expect((await send(server, '/api/v1/token/revoke', bearer(downstream, form({ token: downstream })))).status).toBe(401);
    const described = await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: downstream })));
    expect(described.body).toMatchObject({ active: true, aud: API, sub: agent.agentId });
    const own = (await grant()).body.access_token;
    expect((await send(server, '/api/v1/agents', bearer(own))).status).toBe(200);
    expect((await send(server, '/api/v1/token/revoke', bearer(own, form({ token: downstream })))).status).toBe(200);
    expect((await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: downstream })))).body).toEqual({ active: false });
  });

  it('accept a token issued before audiences existed (no aud) until it expires', async () => {
    const issued = decodeJwt((await grant()).body.access_token);
    const { aud: _aud, ...legacy } = issued;
    const token = server.deps.keys.sign(legacy as Parameters<typeof server.deps.keys.sign>[0]);
    expect((await send(server, '/api/v1/agents', bearer(token))).status).toBe(200);
  });
});

describe('a resource server verifying tokens', () => {
  it('verifies as the README shows (docs/examples/verify-token.mjs, the code the README quotes)', async () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    const example = fs.readFileSync('docs/examples/verify-token.mjs', 'utf8');
    const body = example.slice(example.indexOf('export async function'));
    expect(readme).toContain(body.trim());
    type Verifier = (idpUrl: string, audience: string) => Promise<(token: string, scope: string) => Promise<Record<string, unknown>>>;
    const { tokenVerifier } = (await import(pathToFileURL(path.resolve('docs/examples/verify-token.mjs')).href)) as { tokenVerifier: Verifier };
    const verify = await tokenVerifier(server.config.publicUrl, API);
    const token = (await grant({ resource: API })).body.access_token;
    expect(await verify(token, 'agents:read')).toMatchObject({ sub: agent.agentId, aud: API, iss: server.config.publicUrl });
    await expect(verify(token, 'audit:read')).rejects.toThrow('the token lacks audit:read');
    await expect(verify((await grant()).body.access_token, 'agents:read')).rejects.toThrow(/aud/);
    await expect(verify((await grant({ resource: OTHER })).body.access_token, 'agents:read')).rejects.toThrow(/aud/);
  });

  it("passes oauth4webapi's validateJwtAccessToken (RFC 9068)", async () => {
    const issuer = new URL(server.config.publicUrl);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const token = (await grant({ resource: API })).body.access_token;
    const request = new Request(`${API}/things`, { headers: { Authorization: `Bearer ${token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, API, { [oauth.allowInsecureRequests]: true });
    expect(claims).toMatchObject({ sub: agent.agentId, aud: API, client_id: agent.agentId });
  });
});

describe('the GitHub exchange', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ TOKEN_AUDIENCES: API });
  });
  afterAll(() => h.stop());

  it('follows the same rule: PUBLIC_URL by default, a configured resource, invalid_target otherwise', async () => {
    const agentId = (await createAgent(h.server, h.admin, { scopes: ['agents:read'] })).agentId;
    await createPolicy(h, { agentId });
    expect(decodeJwt((await exchange(h.server, await mintIdToken(h.github), agentId)).body.access_token).aud).toBe('http://idp.test');
    expect(decodeJwt((await exchange(h.server, await mintIdToken(h.github), agentId, { resource: API })).body.access_token).aud).toBe(API);
    const refused = await exchange(h.server, await mintIdToken(h.github), agentId, { resource: 'https://evil.example' });
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 400, error: 'invalid_target' });
  });
});
