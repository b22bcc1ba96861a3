/**
 * What the hostile-input properties run against: one server trusting a fake GitHub issuer;
 * an agent with a credential, tokens and a trust policy that bodies may name; a
 * registration policy; and a second agent whose ids fill path parameters, so that a random
 * DELETE or suspend harms nothing else. Also every endpoint of the API, and the last step
 * of a generated request: minting its ID tokens and encoding its body.
 */
import { expect } from '@jest/globals';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from './fake-github-issuer.js';
import { loadClaimFixture } from './github-claims.js';
import { ADMIN, startTestServer, type TestServer } from './test-server.js';
import { adminToken, bearer, createAgent, getToken, json, platformOrgIdOf, send } from './api.js';
import { ABSENT, encodeFields, type World } from './hostile-input.js';

export const AUDIENCE = 'https://idp.test/github';
export const REPOSITORY = 'octo-org/octo-repo';
export const FIXTURE = loadClaimFixture('push-main');

export type BodyKind = 'form' | 'json' | 'json-or-form' | 'none';
export interface Endpoint {
  readonly method: string;
  readonly path: string;
  readonly body: BodyKind;
}

/** Every route of server/src/app.ts (hostile-input.property.test.ts holds this list to the OpenAPI document). */
export const ENDPOINTS: readonly Endpoint[] = [
  { method: 'POST', path: '/api/v1/token', body: 'form' },
  { method: 'POST', path: '/api/v1/token/introspect', body: 'form' },
  { method: 'POST', path: '/api/v1/token/revoke', body: 'form' },
  { method: 'POST', path: '/api/v1/oidc/token', body: 'json-or-form' },
  { method: 'POST', path: '/api/v1/oidc/register', body: 'json-or-form' },
  { method: 'POST', path: '/api/v1/oidc/trust-policies', body: 'json' },
  { method: 'GET', path: '/api/v1/oidc/trust-policies', body: 'none' },
  { method: 'GET', path: '/api/v1/oidc/trust-policies/{id}', body: 'none' },
  { method: 'DELETE', path: '/api/v1/oidc/trust-policies/{id}', body: 'none' },
  { method: 'POST', path: '/api/v1/agents', body: 'json' },
  { method: 'GET', path: '/api/v1/agents', body: 'none' },
  { method: 'GET', path: '/api/v1/agents/{agentId}', body: 'none' },
  { method: 'PATCH', path: '/api/v1/agents/{agentId}', body: 'json' },
  { method: 'DELETE', path: '/api/v1/agents/{agentId}', body: 'none' },
  { method: 'POST', path: '/api/v1/agents/{agentId}/suspend', body: 'none' },
  { method: 'POST', path: '/api/v1/agents/{agentId}/reactivate', body: 'none' },
  { method: 'POST', path: '/api/v1/agents/{agentId}/credentials', body: 'none' },
  { method: 'GET', path: '/api/v1/agents/{agentId}/credentials', body: 'none' },
  { method: 'DELETE', path: '/api/v1/agents/{agentId}/credentials/{credentialId}', body: 'none' },
  { method: 'POST', path: '/api/v1/orgs', body: 'json' },
  { method: 'GET', path: '/api/v1/orgs', body: 'none' },
  { method: 'GET', path: '/api/v1/orgs/{orgId}', body: 'none' },
  { method: 'PATCH', path: '/api/v1/orgs/{orgId}', body: 'json' },
  { method: 'DELETE', path: '/api/v1/orgs/{orgId}', body: 'none' },
  { method: 'POST', path: '/api/v1/orgs/{orgId}/suspend', body: 'none' },
  { method: 'POST', path: '/api/v1/orgs/{orgId}/reactivate', body: 'none' },
  { method: 'GET', path: '/api/v1/orgs/{orgId}/usage', body: 'none' },
  { method: 'POST', path: '/api/v1/federation/partners', body: 'json' },
  { method: 'GET', path: '/api/v1/federation/partners', body: 'none' },
  { method: 'GET', path: '/api/v1/federation/partners/{partnerId}', body: 'none' },
  { method: 'PATCH', path: '/api/v1/federation/partners/{partnerId}', body: 'json' },
  { method: 'DELETE', path: '/api/v1/federation/partners/{partnerId}', body: 'none' },
  { method: 'POST', path: '/api/v1/federation/partners/{partnerId}/suspend', body: 'none' },
  { method: 'POST', path: '/api/v1/federation/partners/{partnerId}/reactivate', body: 'none' },
  { method: 'POST', path: '/api/v1/federation/bindings', body: 'json' },
  { method: 'GET', path: '/api/v1/federation/bindings', body: 'none' },
  { method: 'GET', path: '/api/v1/federation/bindings/{bindingId}', body: 'none' },
  { method: 'DELETE', path: '/api/v1/federation/bindings/{bindingId}', body: 'none' },
  { method: 'POST', path: '/api/v1/federation/partners/{partnerId}/evaluate', body: 'json' },
  { method: 'POST', path: '/api/v1/oidc/trust-policies/evaluate', body: 'json' },
  { method: 'GET', path: '/api/v1/webhooks/event-types', body: 'none' },
  { method: 'POST', path: '/api/v1/webhooks', body: 'json' },
  { method: 'GET', path: '/api/v1/webhooks', body: 'none' },
  { method: 'GET', path: '/api/v1/webhooks/{webhookId}', body: 'none' },
  { method: 'PATCH', path: '/api/v1/webhooks/{webhookId}', body: 'json' },
  { method: 'DELETE', path: '/api/v1/webhooks/{webhookId}', body: 'none' },
  { method: 'POST', path: '/api/v1/webhooks/{webhookId}/secret/rotate', body: 'json' },
  { method: 'POST', path: '/api/v1/webhooks/{webhookId}/test', body: 'none' },
  { method: 'GET', path: '/api/v1/webhooks/{webhookId}/deliveries', body: 'none' },
  { method: 'GET', path: '/api/v1/webhooks/{webhookId}/deliveries/{deliveryId}/attempts', body: 'none' },
  { method: 'POST', path: '/api/v1/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver', body: 'none' },
  { method: 'POST', path: '/api/v1/webhooks/{webhookId}/recover', body: 'json' },
  { method: 'GET', path: '/api/v1/audit', body: 'none' },
  { method: 'GET', path: '/api/v1/audit/verify', body: 'none' },
  { method: 'GET', path: '/api/v1/stats', body: 'none' },
  { method: 'GET', path: '/api/v1/keys', body: 'none' },
  { method: 'GET', path: '/api/v1/openapi.json', body: 'none' },
  { method: 'GET', path: '/.well-known/oauth-authorization-server', body: 'none' },
  { method: 'GET', path: '/.well-known/jwks.json', body: 'none' },
  { method: 'GET', path: '/healthz', body: 'none' },
  { method: 'GET', path: '/readyz', body: 'none' },
  { method: 'GET', path: '/metrics', body: 'none' },
];

/** A GitHub ID token signed by the trusted issuer with these claims (ABSENT ones left out); minted when sent. */
export class SignedIdToken {
  constructor(readonly claims: Record<string, unknown>) {}
}

export interface FuzzWorld extends World {
  readonly server: TestServer;
  readonly github: FakeGitHubIssuer;
  /** The platform organization, and a federation partner open to it that bodies may name. */
  readonly platformOrgId: string;
  readonly partnerId: string;
  /** The agent, credential, trust policy, organization, federation partner, binding, webhook and delivery that path parameters name. */
  readonly target: {
    readonly agentId: string;
    readonly credentialId: string;
    readonly policyId: string;
    readonly orgId: string;
    readonly partnerId: string;
    readonly bindingId: string;
    readonly webhookId: string;
    readonly deliveryId: string;
  };
  stop(): Promise<void>;
}

export async function startFuzzWorld(): Promise<FuzzWorld> {
  const github = await startFakeGitHubIssuer({ audience: AUDIENCE });
  // Webhook URLs: every name resolves to loopback, the one range allowed, so that whatever a
  // fuzzed body subscribes, a delivery never leaves the machine.
  const server = await startTestServer({
    env: { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE, EGRESS_ALLOW_CIDRS: '127.0.0.0/8' },
    resolve: async () => [{ address: '127.0.0.1', family: 4 }],
  });
  const admin = await adminToken(server);
  const createPolicy = (fields: Record<string, unknown>) => send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, ...fields }, admin));
  const agent = await createAgent(server, admin, { name: 'fuzz-agent', scopes: ['agents:read', 'tokens:read'] });
  const target = await createAgent(server, admin, { name: 'fuzz-target', scopes: ['agents:read'] });
  const policies = [await createPolicy({ agentId: agent.agentId }), await createPolicy({ scopes: ['agents:read'] }), await createPolicy({ agentId: target.agentId })];
  expect(policies.map((policy) => policy.status)).toEqual([201, 201, 201]);
  const tokens = await Promise.all([1, 2, 3, 4].map(() => getToken(server, agent.agentId, agent.clientSecret)));
  const targetOrg = await send(server, '/api/v1/orgs', json('POST', { slug: 'fuzz-target', name: 'Fuzz target' }, admin));
  expect(targetOrg.status).toBe(201);
  const platformOrgId = await platformOrgIdOf(server);
  const createPartner = (name: string) =>
    send(server, '/api/v1/federation/partners', json('POST', { preset: 'custom', name, issuer: 'https://ci.example.com', audiences: ['https://idp.test'], orgIds: [platformOrgId] }, admin));
  const partners = [await createPartner('fuzz-partner'), await createPartner('fuzz-target-partner')];
  const binding = await send(
    server,
    '/api/v1/federation/bindings',
    json('POST', { partnerId: partners[1].body.partnerId, agentId: target.agentId, conditions: [{ claim: 'sub', op: 'eq', value: 'fuzz-target' }] }, admin),
  );
  expect([...partners.map((partner) => partner.status), binding.status]).toEqual([201, 201, 201]);
  const webhook = await send(server, '/api/v1/webhooks', json('POST', { url: 'http://127.0.0.1:1/fuzz', eventTypes: ['org.suspended'] }, admin));
  const delivery = await send(server, `/api/v1/webhooks/${webhook.body.webhookId}/test`, bearer(admin, { method: 'POST' }));
  expect([webhook.status, delivery.status]).toEqual([201, 202]);
  return {
    server,
    github,
    adminToken: admin,
    agentId: agent.agentId,
    agentSecret: agent.clientSecret,
    credentialId: agent.credentialId,
    agentToken: tokens[0],
    policyId: policies[0].body.id,
    spareTokens: tokens.slice(1),
    platformOrgId,
    partnerId: partners[0].body.partnerId,
    target: {
      agentId: target.agentId,
      credentialId: target.credentialId,
      policyId: policies[2].body.id,
      orgId: targetOrg.body.orgId,
      partnerId: partners[1].body.partnerId,
      bindingId: binding.body.bindingId,
      webhookId: webhook.body.webhookId,
      deliveryId: delivery.body.deliveryId,
    },
    stop: async () => {
      await server.stop();
      await github.close();
    },
  };
}

export const naturalType = (as: 'json' | 'form') => (as === 'json' ? 'application/json' : 'application/x-www-form-urlencoded');

/** `{orgId}`, `{partnerId}`, `{bindingId}` and `{webhookId}` take their own parameter, or the `id` segment when none is given; `{deliveryId}` its own, or the credential's. */
export function fillTemplate(
  path: string,
  params: { agentId: string; credentialId: string; id: string; orgId?: string; partnerId?: string; bindingId?: string; webhookId?: string; deliveryId?: string },
): string {
  return path
    .replace('{agentId}', params.agentId)
    .replace('{credentialId}', params.credentialId)
    .replace('{id}', params.id)
    .replace('{orgId}', params.orgId ?? params.id)
    .replace('{partnerId}', params.partnerId ?? params.id)
    .replace('{bindingId}', params.bindingId ?? params.id)
    .replace('{webhookId}', params.webhookId ?? params.id)
    .replace('{deliveryId}', params.deliveryId ?? params.credentialId);
}

/** The path parameters of the world's targets. */
export const targetParams = (world: FuzzWorld) => ({
  agentId: world.target.agentId,
  credentialId: world.target.credentialId,
  id: world.target.policyId,
  orgId: world.target.orgId,
  partnerId: world.target.partnerId,
  bindingId: world.target.bindingId,
  webhookId: world.target.webhookId,
  deliveryId: world.target.deliveryId,
});

/** The body text of these fields, with every SignedIdToken minted now (a jti is good once). */
export async function encodeBody(github: FakeGitHubIssuer, fields: Record<string, unknown>, as: 'json' | 'form', repeat?: string): Promise<string> {
  const minted: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!(value instanceof SignedIdToken)) {
      minted[name] = value;
      continue;
    }
    const omit = Object.keys(value.claims).filter((claim) => value.claims[claim] === ABSENT);
    minted[name] = await github.mintIdToken(value.claims, { omit });
  }
  return encodeFields(minted, as, repeat);
}

/**
 * After the storm: the server answers, the admin still acts, the audit chain verifies,
 * every trust policy reads as documented, and nothing was logged as an unhandled error.
 */
export async function expectUnharmed(world: FuzzWorld): Promise<void> {
  expect((await send(world.server, '/healthz')).status).toBe(200);
  expect((await send(world.server, '/api/v1/agents', bearer(world.adminToken))).status).toBe(200);
  expect((await send(world.server, '/api/v1/audit/verify', bearer(world.adminToken))).body).toMatchObject({ valid: true });
  expect(await getToken(world.server, ADMIN.clientId, ADMIN.clientSecret)).toEqual(expect.any(String));
  // Everything stored along the way still reads as the OpenAPI document describes (ids pinned from tokens included).
  for (let cursor: string | null = '', pages = 0; cursor !== null && pages < 50; pages += 1) {
    const page = await send(world.server, `/api/v1/oidc/trust-policies?limit=100${cursor ? `&cursor=${cursor}` : ''}`, bearer(world.adminToken));
    cursor = page.body.nextCursor;
  }
  for (const list of ['/api/v1/federation/partners', '/api/v1/federation/bindings']) {
    for (let cursor: string | null = '', pages = 0; cursor !== null && pages < 50; pages += 1) {
      const page = await send(world.server, `${list}?limit=100${cursor ? `&cursor=${cursor}` : ''}`, bearer(world.adminToken));
      expect(page.status).toBe(200);
      cursor = page.body.nextCursor;
    }
  }
  const errors = world.server.logs.map((line) => JSON.parse(line)).filter((line) => line.level >= 50 && line.err);
  // The database's complaint is at the end of a Knex message, after the SQL.
  expect([...new Set(errors.map((line) => `${line.method} ${line.path}: ${String(line.err.message).split(' - ').pop()}`))]).toEqual([]);
}
