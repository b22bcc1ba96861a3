/**
 * Explaining a decision without making it: POST /federation/partners/{id}/evaluate and
 * POST /oidc/trust-policies/evaluate say which checks hold and which condition failed, with
 * the expected and the actual value, for the caller's organization only; nothing is spent,
 * issued or audited.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { createBindingInput, createPartnerInput } from '../../server/src/federation/federation-input.js';
import { FederationService } from '../../server/src/federation/federation-service.js';
import type { Partner } from '../../server/src/federation/federation-store.js';
import { adminToken, bearer, createAgent, createTenant, form, json, send } from '../support/api.js';
import { claimsOfJwt } from '../support/load.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const ISSUER = 'https://gitlab.evaluate.test';
let server: TestServer;
let admin: string;
let partner: Partner;
let agentId: string;
let mint: (claims: JWTPayload) => Promise<string>;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const federation = new FederationService({ knex: server.deps.knex, clock: server.deps.clock });
  partner = await federation.createPartner(
    OPERATOR_CALLER,
    createPartnerInput.parse({
      preset: 'gitlab',
      name: 'GitLab',
      issuer: ISSUER,
      keys: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] },
      audiences: ['https://idp.test'],
      requiredClaims: [{ claim: 'namespace_id', op: 'eq', value: '42' }],
      orgIds: [claimsOfJwt(admin).org_id],
    }),
  );
  agentId = (await createAgent(server, admin, { name: 'evaluated', scopes: ['agents:read'] })).agentId;
  await federation.createBinding(OPERATOR_CALLER, createBindingInput.parse({ partnerId: partner.partnerId, agentId, conditions: [{ claim: 'project_id', op: 'eq', value: '7' }] }));
  mint = (claims) =>
    new SignJWT({ iss: ISSUER, aud: 'https://idp.test', sub: 'project_path:acme/app', namespace_id: '42', project_id: '7', jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
});
afterAll(() => server?.stop());

const evaluatePartner = (body: unknown, token = admin) => send(server, `/api/v1/federation/partners/${partner.partnerId}/evaluate`, json('POST', body, token));

describe('POST /federation/partners/{id}/evaluate', () => {
  it('names the failing condition with expected and actual values, and spends nothing', async () => {
    const token = await mint({ project_id: '8' });
    const reply = await evaluatePartner({ token });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      partnerId: partner.partnerId,
      token: { isVerified: true },
      requiredClaims: [{ condition: { claim: 'namespace_id', op: 'eq', value: '42' }, isMet: true, actual: '42' }],
      bindings: [{ agentId, isMatch: false, conditions: [{ condition: { claim: 'project_id', op: 'eq', value: '7' }, isMet: false, actual: '8' }] }],
      wouldGrant: false,
    });
    const matching = await mint({});
    expect((await evaluatePartner({ token: matching })).body.wouldGrant).toBe(true);
    // Nothing was spent: the same token is still good for a grant.
    const grant = await send(server, '/api/v1/token', form({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: agentId, subject_token: matching, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }));
    expect(grant.status).toBe(200);
  });

  it('says why a token does not verify, and evaluates claims as a dry run', async () => {
    const stale = await evaluatePartner({ token: await mint({ aud: 'https://elsewhere.test' }) });
    expect(stale.body.token).toEqual({ isVerified: false, reason: expect.stringMatching(/aud/) });
    expect(stale.body.wouldGrant).toBe(false);
    const dryRun = await evaluatePartner({ claims: { namespace_id: '42', project_id: '7' } });
    expect(dryRun.body).toMatchObject({ token: { isVerified: null }, wouldGrant: true });
    expect((await evaluatePartner({})).status).toBe(400);
    expect((await evaluatePartner({ token: 'x', claims: {} })).status).toBe(400);
  });

  it('answers 404 to a caller whose organization the partner is not open to', async () => {
    const tenant = await createTenant(server, admin, { slug: 'eval-tenant', adminScopes: ['agents:read'] });
    expect((await evaluatePartner({ claims: {} }, tenant.admin)).status).toBe(404);
  });
});

describe('POST /oidc/trust-policies/evaluate', () => {
  it('lists each policy for the repository with the constraint that fails', async () => {
    const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/eval', agentId, branch: 'main' }, admin));
    const reply = await send(
      server,
      '/api/v1/oidc/trust-policies/evaluate',
      json('POST', { agentId, claims: { repository: 'octo-org/eval', repository_id: '1', repository_owner_id: '2', ref: 'refs/heads/dev', event_name: 'push' } }, admin),
    );
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      token: { isVerified: null },
      policies: [{ policyId: policy.body.id, agentId, isMatch: false, mismatches: [{ constraint: 'branch', reason: 'ref "refs/heads/dev" is not "refs/heads/main"' }] }],
    });
  });
});
