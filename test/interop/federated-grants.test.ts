/**
 * The federated grants through two clients nobody here wrote, unmodified: openid-client v6
 * and oauth4webapi v3 perform RFC 8693 token exchange and the RFC 7523 JWT bearer grant
 * with their generic grant functions and no client authentication (`client_id` only).
 * Every reply is checked against the OpenAPI document.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { createBindingInput, createPartnerInput } from '../../server/src/federation/federation-input.js';
import { FederationService } from '../../server/src/federation/federation-service.js';
import { adminToken, createAgent, documentedFetch } from '../support/api.js';
import { claimsOfJwt } from '../support/load.js';
import { startReachableTestServer } from '../support/reachable-server.js';
import type { TestServer } from '../support/test-server.js';

const ISSUER = 'https://gitlab.interop.test';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

let server: TestServer;
let agentId: string;
let mint: (aud: string) => Promise<string>;

beforeAll(async () => {
  server = await startReachableTestServer();
  const admin = await adminToken(server);
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const federation = new FederationService({ knex: server.deps.knex, clock: server.deps.clock });
  const partner = await federation.createPartner(
    OPERATOR_CALLER,
    createPartnerInput.parse({
      preset: 'gitlab',
      name: 'GitLab (interop)',
      issuer: ISSUER,
      algorithms: ['ES256'],
      keys: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] },
      audiences: ['https://idp.interop.test'],
      requiredClaims: [{ claim: 'namespace_id', op: 'eq', value: '42' }],
      orgIds: [claimsOfJwt(admin).org_id],
    }),
  );
  agentId = (await createAgent(server, admin, { name: 'interop', scopes: ['agents:read'] })).agentId;
  await federation.createBinding(OPERATOR_CALLER, createBindingInput.parse({ partnerId: partner.partnerId, agentId, conditions: [{ claim: 'project_id', op: 'eq', value: '7' }] }));
  mint = (aud) =>
    new SignJWT({ iss: ISSUER, aud, sub: 'project_path:acme/app:ref_type:branch:ref:main', namespace_id: '42', project_id: '7', jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
});
afterAll(() => server.stop());

describe('openid-client v6 genericGrantRequest, no client authentication', () => {
  const discover = () =>
    client.discovery(new URL(server.config.publicUrl), agentId, undefined, client.None(), {
      algorithm: 'oauth2',
      execute: [client.allowInsecureRequests], // plain http on loopback, in tests only
      [client.customFetch]: documentedFetch,
    });

  it('performs RFC 8693 token exchange', async () => {
    const config = await discover();
    expect(config.serverMetadata().grant_types_supported).toEqual(expect.arrayContaining([TOKEN_EXCHANGE, JWT_BEARER]));
    const tokens = await client.genericGrantRequest(config, TOKEN_EXCHANGE, {
      subject_token: await mint('https://idp.interop.test'),
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      scope: 'agents:read',
    });
    expect(tokens).toMatchObject({ token_type: 'bearer', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'agents:read' });
    expect(claimsOfJwt(tokens.access_token).sub).toBe(agentId);
  });

  it('performs the RFC 7523 JWT bearer grant', async () => {
    const tokens = await client.genericGrantRequest(await discover(), JWT_BEARER, { assertion: await mint(server.config.publicUrl) });
    expect(claimsOfJwt(tokens.access_token)).toMatchObject({ sub: agentId, partner_iss: ISSUER });
  });

  it('surfaces invalid_grant as a ResponseBodyError', async () => {
    await expect(client.genericGrantRequest(await discover(), JWT_BEARER, { assertion: await mint('https://elsewhere.test') })).rejects.toMatchObject({
      name: 'ResponseBodyError',
      error: 'invalid_grant',
    });
  });
});

describe('oauth4webapi v3 genericTokenEndpointRequest, no client authentication', () => {
  const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: documentedFetch };
  const grant = async (grantType: string, parameters: Record<string, string>) => {
    const issuer = new URL(server.config.publicUrl);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...options }));
    const response = await oauth.genericTokenEndpointRequest(as, { client_id: agentId }, oauth.None(), grantType, new URLSearchParams(parameters), options);
    return oauth.processGenericTokenEndpointResponse(as, { client_id: agentId }, response);
  };

  it('performs RFC 8693 token exchange and the RFC 7523 JWT bearer grant', async () => {
    const exchanged = await grant(TOKEN_EXCHANGE, { subject_token: await mint('https://idp.interop.test'), subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    expect(exchanged).toMatchObject({ token_type: 'bearer', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
    const asserted = await grant(JWT_BEARER, { assertion: await mint(`${server.config.publicUrl}/api/v1/token`) });
    expect(claimsOfJwt(asserted.access_token).sub).toBe(agentId);
  });
});
