/**
 * A partner's keys from its OIDC discovery document or its jwksUri, fetched through the
 * egress guard: allowed on loopback only because the operator said so (EGRESS_ALLOW_CIDRS),
 * refused (503, nothing sent) from a private or loopback address otherwise, and refetched
 * when the partner rotates its keys.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { createBindingInput, createPartnerInput } from '../../server/src/federation/federation-input.js';
import { FederationService } from '../../server/src/federation/federation-service.js';
import { adminToken, createAgent, form, send } from '../support/api.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { claimsOfJwt } from '../support/load.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const AUDIENCE = 'https://idp.test/partners';
let issuer: FakeGitHubIssuer;
beforeAll(async () => {
  issuer = await startFakeGitHubIssuer({ audience: AUDIENCE });
});
afterAll(() => issuer.close());

async function partnerAndAgent(server: TestServer, fields: Record<string, unknown>): Promise<string> {
  const admin = await adminToken(server);
  const federation = new FederationService({ knex: server.deps.knex, clock: server.deps.clock });
  const partner = await federation.createPartner(
    OPERATOR_CALLER,
    createPartnerInput.parse({ preset: 'custom', name: 'ci', issuer: issuer.issuer, audiences: [AUDIENCE], orgIds: [claimsOfJwt(admin).org_id], ...fields }),
  );
  const agent = await createAgent(server, admin, { name: 'ci-agent', scopes: ['agents:read'] });
  await federation.createBinding(OPERATOR_CALLER, createBindingInput.parse({ partnerId: partner.partnerId, agentId: agent.agentId, conditions: [{ claim: 'sub', op: 'glob', value: 'repo:octo-org/**' }] }));
  return agent.agentId;
}

const exchange = async (server: TestServer, agentId: string) =>
  send(
    server,
    '/api/v1/token',
    form({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: agentId,
      subject_token: await issuer.mintIdToken({ sub: 'repo:octo-org/octo-repo:ref:refs/heads/main', aud: AUDIENCE }),
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    }),
  );

describe('keys from discovery, with loopback allowed by the operator', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { EGRESS_ALLOW_CIDRS: '127.0.0.0/8' } });
  });
  afterAll(() => server?.stop());

  it('finds the JWKS through discovery, caches it, and refetches when the partner rotates', async () => {
    const agentId = await partnerAndAgent(server, {});
    expect((await exchange(server, agentId)).status).toBe(200);
    const fetched = issuer.jwksRequests;
    expect((await exchange(server, agentId)).status).toBe(200);
    expect(issuer.jwksRequests).toBe(fetched); // cached
    await issuer.rotateKeys();
    expect((await exchange(server, agentId)).status).toBe(200); // an unknown kid: one refetch
    expect(issuer.jwksRequests).toBe(fetched + 1);
  });
});

describe('keys from a private or loopback address, not allowed', () => {
  let server: TestServer;
  let resolved: string[];
  beforeAll(async () => {
    resolved = [];
    server = await startTestServer({
      resolve: async (hostname) => {
        resolved.push(hostname);
        return [{ address: '10.1.2.3', family: 4 }];
      },
    });
  });
  afterAll(() => server?.stop());

  it('refuses a JWKS served from loopback (the discovery document is never requested)', async () => {
    const before = issuer.jwksRequests;
    const agentId = await partnerAndAgent(server, {});
    const reply = await exchange(server, agentId);
    expect(reply.status).toBe(503);
    expect(reply.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(issuer.jwksRequests).toBe(before);
  });

  it('refuses a jwksUri whose name resolves to a private address, before connecting', async () => {
    const agentId = await partnerAndAgent(server, { jwksUri: 'https://keys.partner.example/jwks.json' });
    const reply = await exchange(server, agentId);
    expect(reply.status).toBe(503);
    expect(resolved).toContain('keys.partner.example');
  });
});
