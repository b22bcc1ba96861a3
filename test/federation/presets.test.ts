/**
 * One fake issuer per preset (keys inline, tokens shaped as that issuer mints them): a
 * grant for the workload a binding names, and a refusal for the pitfall of that kind of
 * issuer (another tenant on a shared issuer, another project, another service account…).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { createBindingInput, createPartnerInput } from '../../server/src/federation/federation-input.js';
import { FederationService } from '../../server/src/federation/federation-service.js';
import { adminToken, createAgent, form, send } from '../support/api.js';
import { claimsOfJwt } from '../support/load.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

interface PresetCase {
  readonly preset: string;
  readonly issuer: string;
  readonly alg: 'RS256' | 'ES256';
  readonly partner: Record<string, unknown>;
  readonly conditions: Record<string, unknown>[];
  readonly claims: JWTPayload;
  /** The token of a workload the binding must not admit. */
  readonly pitfall: JWTPayload;
}

const CASES: PresetCase[] = [
  {
    preset: 'github',
    issuer: 'https://token.actions.githubusercontent.com',
    alg: 'RS256',
    partner: { requiredClaims: [{ claim: 'repository_owner_id', op: 'eq', value: '1001' }] },
    conditions: [{ claim: 'repository', op: 'eq', value: 'octo-org/deploy' }, { claim: 'ref', op: 'eq', value: 'refs/heads/main' }],
    claims: { sub: 'repo:octo-org/deploy:ref:refs/heads/main', repository: 'octo-org/deploy', repository_owner_id: '1001', ref: 'refs/heads/main' },
    pitfall: { repository_owner_id: '666', repository: 'octo-org/deploy' }, // a re-created owner of the same name
  },
  {
    preset: 'gitlab',
    issuer: 'https://gitlab.example.com',
    alg: 'RS256',
    partner: { requiredClaims: [{ claim: 'namespace_id', op: 'eq', value: '42' }] },
    conditions: [{ claim: 'project_id', op: 'eq', value: '7' }, { claim: 'ref_protected', op: 'eq', value: 'true' }],
    claims: { sub: 'project_path:acme/app:ref_type:branch:ref:main', namespace_id: '42', project_id: '7', project_path: 'acme/app', ref_protected: 'true' },
    pitfall: { project_id: '913', project_path: 'mallory/app-fork', ref_protected: 'false' }, // a fork's merge-request pipeline
  },
  {
    preset: 'buildkite',
    issuer: 'https://agent.buildkite.com',
    alg: 'RS256',
    partner: { requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }] },
    conditions: [{ claim: 'pipeline_slug', op: 'eq', value: 'release' }],
    claims: { sub: 'organization:acme:pipeline:release:ref:refs/heads/main', organization_slug: 'acme', pipeline_slug: 'release' },
    pitfall: { organization_slug: 'mallory', pipeline_slug: 'release' }, // another Buildkite customer, same pipeline name
  },
  {
    preset: 'circleci',
    issuer: 'https://oidc.circleci.com/org/5b3c1a2e-1111-4222-8333-444455556666',
    alg: 'RS256',
    partner: { audiences: ['5b3c1a2e-1111-4222-8333-444455556666'] },
    conditions: [{ claim: 'oidc.circleci.com/project-id', op: 'eq', value: 'c0ffee00-1111-4222-8333-444455556666' }],
    claims: { sub: 'org/5b3c/project/c0ffee/user/u1', aud: '5b3c1a2e-1111-4222-8333-444455556666', 'oidc.circleci.com/project-id': 'c0ffee00-1111-4222-8333-444455556666' },
    pitfall: { 'oidc.circleci.com/project-id': 'bad0bad0-1111-4222-8333-444455556666' },
  },
  {
    preset: 'kubernetes',
    issuer: 'https://oidc.eks.example.com/id/CLUSTER1',
    alg: 'ES256',
    partner: {},
    conditions: [{ claim: 'sub', op: 'eq', value: 'system:serviceaccount:payments:worker' }],
    claims: { sub: 'system:serviceaccount:payments:worker', 'kubernetes.io': { namespace: 'payments' } },
    pitfall: { sub: 'system:serviceaccount:default:worker' },
  },
  {
    preset: 'spiffe',
    issuer: 'https://spire.example.org',
    alg: 'ES256',
    partner: {},
    conditions: [{ claim: 'sub', op: 'glob', value: 'spiffe://example.org/ns/payments/**' }],
    claims: { sub: 'spiffe://example.org/ns/payments/sa/worker' },
    pitfall: { sub: 'spiffe://example.org/ns/other/sa/worker' },
  },
  {
    preset: 'sentryagent',
    issuer: 'https://idp.partner.example',
    alg: 'RS256',
    partner: { requiredClaims: [{ claim: 'org_id', op: 'eq', value: '11111111-2222-4333-8444-555555555555' }] },
    conditions: [{ claim: 'sub', op: 'eq', value: '99999999-2222-4333-8444-555555555555' }],
    claims: { sub: '99999999-2222-4333-8444-555555555555', org_id: '11111111-2222-4333-8444-555555555555', client_id: '99999999-2222-4333-8444-555555555555' },
    pitfall: { org_id: '66666666-2222-4333-8444-555555555555' }, // the same agent id in another organization of that IdP
  },
  {
    preset: 'custom',
    issuer: 'https://issuer.custom.example',
    alg: 'RS256',
    partner: {},
    conditions: [{ claim: 'sub', op: 'in', value: ['svc-a', 'svc-b'] }],
    claims: { sub: 'svc-a' },
    pitfall: { sub: 'svc-c' },
  },
];

let server: TestServer;
let admin: string;
let federation: FederationService;
beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
  federation = new FederationService({ knex: server.deps.knex, clock: server.deps.clock });
});
afterAll(() => server?.stop());

describe.each(CASES)('the $preset preset', (c) => {
  let agentId: string;
  let sign: (claims: JWTPayload) => Promise<string>;
  const audience = (c.partner.audiences as string[] | undefined)?.[0] ?? 'https://idp.test/federation';

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair(c.alg, { extractable: true });
    const kid = `${c.preset}-key`;
    const partner = await federation.createPartner(
      OPERATOR_CALLER,
      createPartnerInput.parse({
        preset: c.preset,
        name: c.preset,
        ...(c.preset !== 'github' && c.preset !== 'buildkite' && { issuer: c.issuer }),
        keys: { keys: [{ ...(await exportJWK(publicKey)), kid }] },
        audiences: [audience],
        algorithms: [c.alg],
        orgIds: [claimsOfJwt(admin).org_id],
        ...c.partner,
      }),
    );
    expect(partner.issuer).toBe(c.issuer);
    agentId = (await createAgent(server, admin, { name: `${c.preset}-workload`, scopes: ['agents:read'] })).agentId;
    await federation.createBinding(OPERATOR_CALLER, createBindingInput.parse({ partnerId: partner.partnerId, agentId, conditions: c.conditions }));
    sign = (claims) =>
      new SignJWT({ iss: c.issuer, aud: audience, jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: c.alg, kid })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
  });

  const exchange = async (claims: JWTPayload) =>
    send(server, '/api/v1/token', form({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: agentId, subject_token: await sign(claims), subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }));

  it('grants the workload its binding names', async () => {
    const reply = await exchange(c.claims);
    expect(reply.status).toBe(200);
    expect(claimsOfJwt(reply.body.access_token)).toMatchObject({ sub: agentId, partner_iss: c.issuer });
  });

  it('refuses its pitfall with the one invalid_grant answer', async () => {
    const reply = await exchange({ ...c.claims, ...c.pitfall });
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ error: 'invalid_grant', error_description: 'The subject token is invalid, or does not act for this client.' });
  });
});
