/**
 * oauth4webapi v3, the low-level client under openid-client, step by step: discovery, the
 * client-credentials grant with both client authentication methods, its error handling, and
 * introspection (RFC 7662) and revocation (RFC 7009) with our Bearer authentication plugged
 * in as its client authentication. Every reply is checked against the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oauth from 'oauth4webapi';
import { adminToken, createAgent, documentedFetch } from '../support/api.js';
import { startReachableTestServer } from '../support/reachable-server.js';
import type { TestServer } from '../support/test-server.js';

let server: TestServer;
let as: oauth.AuthorizationServer;
let agent: { agentId: string; clientSecret: string };
let admin: string;
const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: documentedFetch };

beforeAll(async () => {
  server = await startReachableTestServer();
  admin = await adminToken(server);
  agent = await createAgent(server, admin, { scopes: ['agents:read'] });
  const issuer = new URL(server.config.publicUrl);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...options }));
});
afterAll(() => server.stop());

const grant = (authentication: oauth.ClientAuth, scope?: string) =>
  oauth
    .clientCredentialsGrantRequest(as, { client_id: agent.agentId }, authentication, new URLSearchParams(scope ? { scope } : {}), options)
    .then((response) => oauth.processClientCredentialsResponse(as, { client_id: agent.agentId }, response));

/** Our introspection and revocation endpoints authenticate the caller with a Bearer token. */
const bearerAuthentication = (token: string): oauth.ClientAuth => (_as, _client, _body, headers) => {
  headers.set('authorization', `Bearer ${token}`);
};

describe('oauth4webapi v3', () => {
  it('accepts our RFC 8414 metadata', () => {
    expect(as).toMatchObject({
      issuer: server.config.publicUrl,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint: `${server.config.publicUrl}/api/v1/token/introspect`,
      revocation_endpoint: `${server.config.publicUrl}/api/v1/token/revoke`,
    });
  });

  it.each([
    ['client_secret_basic', oauth.ClientSecretBasic],
    ['client_secret_post', oauth.ClientSecretPost],
  ])('gets a token with %s', async (_method, authentication) => {
    const response = await grant(authentication(agent.clientSecret), 'agents:read');
    expect(response).toMatchObject({ token_type: 'bearer', expires_in: 3600, scope: 'agents:read' });
  });

  it('throws a ResponseBodyError for invalid_client and invalid_scope', async () => {
    await expect(grant(oauth.ClientSecretPost('sk_live_wrong'))).rejects.toMatchObject({ name: 'ResponseBodyError', status: 401, error: 'invalid_client' });
    await expect(grant(oauth.ClientSecretPost(agent.clientSecret), 'tokens:read')).rejects.toMatchObject({
      name: 'ResponseBodyError',
      status: 400,
      error: 'invalid_scope',
    });
    await expect(grant(oauth.ClientSecretBasic('sk_live_wrong'))).rejects.toMatchObject({ name: 'WWWAuthenticateChallengeError', status: 401 });
  });

  it('introspects and revokes through its RFC 7662 and RFC 7009 functions', async () => {
    const { access_token: token } = await grant(oauth.ClientSecretBasic(agent.clientSecret));
    const client = { client_id: agent.agentId };
    const introspect = async () =>
      oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, bearerAuthentication(admin), token, options));
    expect(await introspect()).toMatchObject({ active: true, sub: agent.agentId, client_id: agent.agentId, scope: 'agents:read', iss: server.config.publicUrl });
    const revocation = await oauth.revocationRequest(as, client, bearerAuthentication(token), token, options);
    expect(await oauth.processRevocationResponse(revocation)).toBeUndefined();
    expect(await introspect()).toEqual({ active: false });
  });
});
