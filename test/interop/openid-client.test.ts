/**
 * openid-client v6, a certified client nobody here wrote, against the real server: RFC 8414
 * discovery, the client-credentials grant with both client authentication methods, its
 * handling of our error responses, and introspection (RFC 7662) and revocation (RFC 7009)
 * with our Bearer authentication plugged in as its client authentication. Every reply is
 * also checked against the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as client from 'openid-client';
import { adminToken, createAgent, documentedFetch, getToken } from '../support/api.js';
import { startReachableTestServer } from '../support/reachable-server.js';
import type { TestServer } from '../support/test-server.js';

let server: TestServer;
let agent: { agentId: string; clientSecret: string };
let admin: string;

beforeAll(async () => {
  server = await startReachableTestServer();
  admin = await adminToken(server);
  agent = await createAgent(server, admin, { scopes: ['agents:read', 'audit:read'] });
});

/** Our introspection and revocation endpoints authenticate the caller with a Bearer token. */
const bearerAuthentication = (token: string): client.ClientAuth => (_as, _client, _body, headers) => {
  headers.set('authorization', `Bearer ${token}`);
};
afterAll(() => server.stop());

const discover = (clientId: string, authentication: client.ClientAuth) =>
  client.discovery(new URL(server.config.publicUrl), clientId, undefined, authentication, {
    algorithm: 'oauth2',
    execute: [client.allowInsecureRequests], // plain http on loopback, in tests only
    [client.customFetch]: documentedFetch,
  });

describe('openid-client v6', () => {
  it('discovers the server through /.well-known/oauth-authorization-server', async () => {
    const config = await discover(agent.agentId, client.ClientSecretPost(agent.clientSecret));
    expect(config.serverMetadata()).toMatchObject({
      issuer: server.config.publicUrl,
      token_endpoint: `${server.config.publicUrl}/api/v1/token`,
      jwks_uri: `${server.config.publicUrl}/.well-known/jwks.json`,
      grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
    });
  });

  it.each([
    ['client_secret_basic', client.ClientSecretBasic],
    ['client_secret_post', client.ClientSecretPost],
  ])('gets a token with %s, all held scopes by default or the ones asked for', async (_method, authentication) => {
    const config = await discover(agent.agentId, authentication(agent.clientSecret));
    const all = await client.clientCredentialsGrant(config);
    expect(all).toMatchObject({ token_type: 'bearer', expires_in: 3600, scope: 'agents:read audit:read' });
    expect(all.access_token.split('.')).toHaveLength(3);
    const narrowed = await client.clientCredentialsGrant(config, { scope: 'audit:read' });
    expect(narrowed.scope).toBe('audit:read');
    expect(narrowed.expiresIn()).toBeGreaterThan(3590);
  });

  it('surfaces a wrong secret sent in the body as an invalid_client error response', async () => {
    const config = await discover(agent.agentId, client.ClientSecretPost('sk_live_wrong'));
    const error = await client.clientCredentialsGrant(config).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(client.ResponseBodyError);
    expect(error).toMatchObject({ status: 401, error: 'invalid_client', error_description: 'Client authentication failed. Invalid client_id or client_secret.' });
  });

  it('surfaces a wrong secret sent with HTTP Basic as the Basic challenge RFC 6749 §5.2 requires', async () => {
    const config = await discover(agent.agentId, client.ClientSecretBasic('sk_live_wrong'));
    const error = await client.clientCredentialsGrant(config).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    const challenge = error as client.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause).toEqual([{ scheme: 'basic', parameters: { realm: 'sentryagent', charset: 'UTF-8' } }]);
    expect(await challenge.response.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('introspects and revokes through tokenIntrospection and tokenRevocation', async () => {
    const token = await getToken(server, agent.agentId, agent.clientSecret, 'agents:read');
    const asAdmin = await discover(agent.agentId, bearerAuthentication(admin));
    expect(await client.tokenIntrospection(asAdmin, token)).toMatchObject({
      active: true,
      sub: agent.agentId,
      client_id: agent.agentId,
      scope: 'agents:read',
      token_type: 'Bearer',
      iss: server.config.publicUrl,
    });
    const asAgent = await discover(agent.agentId, bearerAuthentication(token));
    await expect(client.tokenRevocation(asAgent, token)).resolves.toBeUndefined();
    expect(await client.tokenIntrospection(asAdmin, token)).toEqual({ active: false });
    // Revoking it again is still a success (RFC 7009 §2.2), but its own token is now dead.
    await expect(client.tokenRevocation(asAdmin, token)).resolves.toBeUndefined();
    const refused = await client.tokenRevocation(asAgent, token).catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    expect(refused).toMatchObject({ status: 401, cause: [{ scheme: 'bearer', parameters: { realm: 'sentryagent', error: 'invalid_token' } }] });
  });

  it('surfaces an introspection caller without tokens:read as an insufficient_scope challenge', async () => {
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    const error = await client.tokenIntrospection(await discover(agent.agentId, bearerAuthentication(token)), token).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    expect(error).toMatchObject({
      status: 403,
      cause: [{ scheme: 'bearer', parameters: { realm: 'sentryagent', error: 'insufficient_scope', scope: 'tokens:read' } }],
    });
  });

  it('surfaces a scope the agent does not hold as invalid_scope', async () => {
    const config = await discover(agent.agentId, client.ClientSecretBasic(agent.clientSecret));
    const error = await client.clientCredentialsGrant(config, { scope: 'agents:read admin:orgs' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(client.ResponseBodyError);
    expect(error).toMatchObject({ status: 400, error: 'invalid_scope', error_description: "Requested scope 'admin:orgs' is not available." });
  });
});
