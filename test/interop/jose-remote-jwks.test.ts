/**
 * A downstream API verifying our tokens with jose, as its documentation shows: the key set
 * from our jwks_uri (createRemoteJWKSet), the signature, `typ`, `iss` and expiry (jwtVerify).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, customFetch, errors, jwtVerify } from 'jose';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { adminToken, createAgent, documentedFetch, getToken, send, platformOrgIdOf } from '../support/api.js';
import { startReachableTestServer } from '../support/reachable-server.js';
import { keyServiceOf, startTestServer, type TestServer } from '../support/test-server.js';

const remoteKeys = async (server: TestServer, options: { cooldownDuration?: number } = {}) => {
  const metadata = await send(server, '/.well-known/oauth-authorization-server');
  return createRemoteJWKSet(new URL(metadata.body.jwks_uri), { ...options, [customFetch]: documentedFetch });
};

describe('jose remote JWKS verification', () => {
  let server: TestServer;
  let agent: { agentId: string; clientSecret: string };
  beforeAll(async () => {
    server = await startReachableTestServer();
    agent = await createAgent(server, await adminToken(server), { scopes: ['agents:read'] });
  });
  afterAll(() => server.stop());

  it('verifies our token, its typ and our issuer, and reads its claims', async () => {
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    const { payload, protectedHeader } = await jwtVerify(token, await remoteKeys(server), {
      issuer: server.config.publicUrl,
      typ: 'at+jwt',
      algorithms: ['RS256'],
    });
    expect(protectedHeader).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) });
    expect(payload).toEqual({
      iss: server.config.publicUrl,
      aud: server.config.publicUrl,
      sub: agent.agentId,
      client_id: agent.agentId,
      org_id: await platformOrgIdOf(server),
      scope: 'agents:read',
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(3600);
  });

  it('refuses a token checked against another issuer, a tampered token, and a token of another IdP', async () => {
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    const keys = await remoteKeys(server);
    await expect(jwtVerify(token, keys, { issuer: 'https://elsewhere.example' })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' });
    const [header, payload, signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'admin:orgs' })).toString('base64url');
    await expect(jwtVerify(`${header}.${forged}.${signature}`, keys)).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);
    const other = await startTestServer();
    try {
      await expect(jwtVerify(await adminToken(other), keys)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    } finally {
      await other.stop();
    }
  });

  it('keeps verifying tokens of a rotated-out key and fetches the new key when it meets it', async () => {
    const keys = await remoteKeys(server, { cooldownDuration: 0 });
    const before = await getToken(server, agent.agentId, agent.clientSecret);
    await jwtVerify(before, keys, { issuer: server.config.publicUrl });
    await keyServiceOf(server).rotate(OPERATOR_CALLER, 'RS256');
    await server.deps.keys.refresh();
    const after = await getToken(server, agent.agentId, agent.clientSecret);
    expect((await jwtVerify(after, keys, { issuer: server.config.publicUrl })).payload.sub).toBe(agent.agentId);
    expect((await jwtVerify(before, keys, { issuer: server.config.publicUrl })).payload.sub).toBe(agent.agentId);
  });
});

describe.each(['ES256', 'EdDSA'])('jose with SIGNING_ALG=%s', (alg) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startReachableTestServer({ SIGNING_ALG: alg });
  });
  afterAll(() => server.stop());

  it('verifies our tokens with the published key', async () => {
    const { protectedHeader, payload } = await jwtVerify(await adminToken(server), await remoteKeys(server), {
      issuer: server.config.publicUrl,
      algorithms: [alg],
    });
    expect(protectedHeader.alg).toBe(alg);
    expect(payload.iss).toBe(server.config.publicUrl);
  });
});
